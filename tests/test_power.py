"""Power by simulation: the analysis of each simulated study is the report's, and the numbers behave."""

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy import special

from readerstudy.analysis.statistics.mrmc import obuchowski_rockette_proportion
from readerstudy.analysis.statistics.power import (
    intercept_for,
    or_proportion,
    reaches_goal,
    sample_size_grid,
    simulate_power,
)
from readerstudy.analysis.report import build_report
from readerstudy.analysis.tidy import simulate_rows


def test_vectorised_analysis_equals_the_or_analysis():
    rng = np.random.default_rng(3)
    studies = (rng.random((4, 6, 50)) < rng.uniform(0.4, 0.8, (4, 6, 1))).astype(int)
    estimate, se, df = or_proportion(studies)
    for i in range(4):
        single = obuchowski_rockette_proportion(studies[i][None]).random_readers_random_cases.treatments[0]
        assert (estimate[i], se[i], df[i]) == pytest.approx((single.estimate, single.se, single.df), rel=1e-10)


@pytest.mark.parametrize("goal", ["equivalence", "above_chance"])
def test_decision_rule_is_the_reports(goal):
    readers = {f"r{i}": ("radiologist", p) for i, p in enumerate([0.5, 0.55, 0.6, 0.52, 0.58, 0.62])}
    for seed in range(4):
        rows = simulate_rows(readers=readers, n_cases=120, seed=seed)
        pooled = build_report(rows, bootstrap=0)["studies"][0]["groups"][0]["mrmc_accuracy"]
        cases = sorted({row.case for row in rows})
        correct = {(row.reader, row.case): row.correct for row in rows}
        matrix = np.array([[[correct[r, c] for c in cases] for r in sorted(readers)]])
        reached = bool(reaches_goal(*or_proportion(matrix), goal=goal, margin=0.1, alpha=0.05)[0])
        if goal == "equivalence":
            assert reached == (pooled["verdict"] == "equivalent")
        else:
            assert reached == (pooled["p"] < 0.05 and pooled["estimate"] > 0.5)


def test_intercept_gives_the_population_accuracy():
    assert intercept_for(0.7, 0) == pytest.approx(special.logit(0.7))
    mu = intercept_for(0.6, 0.8)
    z = np.random.default_rng(0).normal(0, 0.8, 400_000)
    assert special.expit(mu + z).mean() == pytest.approx(0.6, abs=0.002)
    assert mu > special.logit(0.6)  # spread on the logit scale pulls the mean accuracy towards 0.5
    with pytest.raises(ValueError):
        intercept_for(1.0, 0.3)


def test_size_under_chance_and_power_rises_with_readers_and_cases():
    null = simulate_power(8, 100, true_accuracy=0.5, goal="above_chance", n_sim=1500, seed=1)
    assert null.power <= 0.07  # type I error at most about alpha (the OR analysis is slightly conservative)
    grid = sample_size_grid([4, 16], [40, 300], true_accuracy=0.6, goal="above_chance", n_sim=300, seed=2)
    power = np.array(grid["power"])
    assert power[1, 1] > power[0, 1] and power[1, 1] > power[1, 0] and power[1, 1] > 0.9
    assert grid["meets_target"][1][1] and grid["smallest"]["n_readers"] * grid["smallest"]["n_cases"] <= 16 * 300
    equivalence = simulate_power(20, 400, true_accuracy=0.5, goal="equivalence", n_sim=300, seed=3)
    assert equivalence.power > 0.9
    far = simulate_power(20, 400, true_accuracy=0.7, goal="equivalence", n_sim=300, seed=3)
    assert far.power < 0.02
    assert equivalence.mc_se == pytest.approx(np.sqrt(equivalence.power * (1 - equivalence.power) / 300))


def test_deterministic_and_each_cell_its_own_stream():
    one = simulate_power(5, 60, true_accuracy=0.55, n_sim=100, seed=9)
    assert one == simulate_power(5, 60, true_accuracy=0.55, n_sim=100, seed=9)
    grid = sample_size_grid([3, 5], [20, 60], true_accuracy=0.55, n_sim=100, seed=9)
    assert grid["power"][1][1] == round(one.power, 4)
    json.dumps(grid, allow_nan=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_readers": 1}, "two readers"),
    ({"goal": "superiority"}, "goal"),
    ({"margin": 0.6}, "margin"),
    ({"true_accuracy": 0.0}, "true_accuracy"),
    ({"reader_sd": -1}, "standard deviations"),
])
def test_bad_settings(kwargs, message):
    settings = {"n_readers": 5, "n_cases": 50, "true_accuracy": 0.55, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate_power(settings.pop("n_readers"), settings.pop("n_cases"), **settings)


def test_power_command():
    out = io.StringIO()
    call_command("power", "--readers", "5", "10", "--cases", "50", "100", "--accuracy", "0.55",
                 "--goal", "equivalence", "--n-sim", "100", stdout=out)
    text = out.getvalue()
    assert "equivalence to chance" in text and "readers \\ cases" in text
    grid = sample_size_grid([5, 10], [50, 100], true_accuracy=0.55, n_sim=100)
    assert f"{grid['power'][1][1]:.3f}" in text
    out = io.StringIO()
    call_command("power", "--readers", "5", "--cases", "50", "--accuracy", "0.6", "--goal", "above_chance",
                 "--n-sim", "50", "--format", "json", stdout=out)
    assert json.loads(out.getvalue())["goal"] == "above_chance"
    with pytest.raises(CommandError, match="true_accuracy"):
        call_command("power", "--readers", "5", "--cases", "50", "--accuracy", "1.5", stdout=io.StringIO())

"""The headline: multi-reader figures first, their verdict holds its size, completeness is stated.

The simulation: readers' true accuracies drawn around a mean that sits exactly at the
equivalence margin (0.6 = 0.5 + 0.10) with reader SD 0.07, so "equivalent" is the wrong
verdict; a test of nominal size 5% declares it at most 5% of the time. The headline's
Obuchowski-Rockette verdict (report/mrmc.py _t_equivalence on the OR analysis of proportion
correct, as the headline computes it) holds that size; the pooled-answers TOST, which treats
answers as independent, does not (the reason it is secondary).
"""

import numpy as np
import pytest

from readerstudy.analysis.report import build_report
from readerstudy.analysis.report.completeness import Exclusion, Expected
from readerstudy.analysis.report.format import for_display
from readerstudy.analysis.report.mrmc import _t_equivalence
from readerstudy.analysis.statistics.mrmc import obuchowski_rockette_proportion
from readerstudy.analysis.statistics.stats import tost_equivalence
from readerstudy.analysis.tidy import simulate_rows

MARGIN = 0.10


def _verdicts(n_sim: int, readers: int, cases: int, mean: float, reader_sd: float, seed: int):
    rng = np.random.default_rng(seed)
    headline, pooled = [], []
    for _ in range(n_sim):
        accuracy = np.clip(rng.normal(mean, reader_sd, readers), 0.01, 0.99)
        correct = (rng.random((readers, cases)) < accuracy[:, None]).astype(float)
        single = obuchowski_rockette_proportion(correct[None]).random_readers_random_cases.treatments[0]
        headline.append(_t_equivalence(single.estimate, single.se, single.df, MARGIN)["verdict"])
        pooled.append(tost_equivalence(int(correct.sum()), correct.size, margin=MARGIN).verdict)
    return np.array(headline), np.array(pooled)


def test_headline_verdict_holds_its_size_when_readers_differ():
    n_sim = 600
    headline, pooled = _verdicts(n_sim, readers=8, cases=100, mean=0.5 + MARGIN, reader_sd=0.07, seed=13)
    rate = (headline == "equivalent").mean()
    pooled_rate = (pooled == "equivalent").mean()
    mc_se = np.sqrt(0.05 * 0.95 / n_sim)
    print(f"false equivalence: headline {rate:.3f}, pooled answers {pooled_rate:.3f} (MC SE {mc_se:.3f})")
    assert rate <= 0.05 + 2.5 * mc_se
    assert pooled_rate > 0.05 + 4 * mc_se  # the pooled verdict is anti-conservative: why it is not the headline


def test_headline_verdict_has_power_when_readers_are_at_chance():
    headline, _ = _verdicts(200, readers=8, cases=100, mean=0.5, reader_sd=0.03, seed=14)
    assert (headline == "equivalent").mean() > 0.5


READERS = {"r1": ("radiologist", 0.55), "r2": ("radiologist", 0.6), "r3": ("orthopaedic_surgeon", 0.5)}


@pytest.fixture(scope="module")
def with_late_reader():
    rows = simulate_rows(study="s", design="paired", readers=READERS, n_cases=30, seed=3)
    late = [row for row in simulate_rows(study="s", design="paired", readers={"late": ("other", 0.9)}, n_cases=30,
                                         seed=4) if row.position <= 6]
    return rows, rows + late


def test_an_unfinished_reader_does_not_change_the_headline(with_late_reader):
    complete, with_late = with_late_reader
    before = build_report(complete, bootstrap=0)["studies"][0]
    after = build_report(with_late, bootstrap=0)["studies"][0]
    assert after["headline"]["accuracy"] == before["headline"]["accuracy"]
    assert (after["headline"]["n_readers"], after["headline"]["n_cases"]) == (3, 30)
    panel = after["completeness"]
    late = next(r for r in panel["readers"] if r["reader"] == "late")
    assert (late["n_read"], late["n_cases"], late["complete"], late["used"]) == (6, 30, False, False)
    assert panel["interim"] and "late" in panel["interim_reasons"][0] and panel["rule"] == "complete"
    assert not before["completeness"]["interim"]


def test_rule_all_says_not_estimable_instead_of_shrinking_the_cases(with_late_reader):
    _, with_late = with_late_reader
    study = build_report(with_late, bootstrap=0, rule="all")["studies"][0]
    accuracy = study["headline"]["accuracy"]
    assert accuracy["estimate"] is None and "not estimable" in accuracy["note"] and "late" in accuracy["note"]
    assert study["groups"][0]["n_readers"] == 4  # the answer-level figures use every reading
    assert study["mrmc"]["accuracy"]["random_readers_random_cases"]["estimate"] is None


def test_expected_readers_and_exclusions_are_named(with_late_reader):
    complete, _ = with_late_reader
    exclusions = [Exclusion("s", "r3", None, "did not meet the experience criterion"),
                  Exclusion("s", "r1", "c0005", "image failed to load")]
    study = build_report(complete, bootstrap=0, exclusions=exclusions,
                         expected={"s": Expected(readers=("r1", "r2", "r3", "not_started"),
                                                 cases=tuple(f"c{i:04d}" for i in range(1, 31)))},
                         open_studies={"s"})["studies"][0]
    panel = {r["reader"]: r for r in study["completeness"]["readers"]}
    assert panel["not_started"]["n_read"] == 0 and not panel["not_started"]["used"]
    assert panel["r3"]["excluded"] and panel["r3"]["reason"] == "did not meet the experience criterion"
    assert panel["r1"]["complete"] and panel["r1"]["n_cases"] == 29  # the excluded reading does not count against r1
    assert study["completeness"]["excluded_readings"] == [
        {"reader": "r1", "case": "c0005", "reason": "image failed to load"}]
    assert "the study is open for reading" in study["completeness"]["interim_reasons"]
    assert study["headline"]["n_readers"] == 2 and study["headline"]["n_cases"] == 29


def test_intervals_stay_inside_their_range():
    rows = simulate_rows(study="s", design="mixed", readers={f"r{i}": ("radiologist", 0.97) for i in range(3)},
                         n_cases=12, seed=9)
    study = build_report(rows, bootstrap=0)["studies"][0]
    figures = [study["headline"]["accuracy"], study["headline"]["auc"],
               *(g["mrmc_accuracy"] for g in study["groups"] if "mrmc_accuracy" in g)]
    for figure in figures:
        if figure["ci"]:
            assert 0 <= figure["ci"][0] <= figure["ci"][1] <= 1
    assert any(f.get("truncated") for f in figures)
    kappa = study["headline"]["kappa"]
    assert kappa["ci"] is None or -1 <= kappa["ci"][0] <= kappa["ci"][1] <= 1


def test_paired_headline_kappa_is_the_accuracy_mapped(with_late_reader):
    complete, _ = with_late_reader
    headline = build_report(complete, bootstrap=0)["studies"][0]["headline"]
    accuracy, kappa = headline["accuracy"], headline["kappa"]
    assert kappa["estimate"] == pytest.approx(2 * accuracy["estimate"] - 1)
    assert kappa["ci"] == pytest.approx([2 * accuracy["ci"][0] - 1, 2 * accuracy["ci"][1] - 1])


def test_mixed_headline_kappa_is_an_or_analysis_of_reader_kappas():
    rows = simulate_rows(study="s", design="mixed", readers={f"r{i}": ("radiologist", 0.7) for i in range(4)},
                         n_cases=40, seed=2)
    study = build_report(rows, bootstrap=0)["studies"][0]
    kappa = study["headline"]["kappa"]
    readers = [g["kappa"]["estimate"] for g in study["groups"] if g["level"] == "reader"]
    assert kappa["estimate"] == pytest.approx(np.mean(readers), rel=1e-12)
    assert kappa["df"] is not None and kappa["ci"][0] < kappa["estimate"] < kappa["ci"][1]


def test_float_noise_does_not_make_a_zero_width_interval():
    """Readers and cases identical: the SE is float noise at most, and no interval is printed."""
    rows = simulate_rows(study="s", design="paired", readers={f"r{i}": ("radiologist", 1.0) for i in range(3)},
                         n_cases=10, seed=1)
    study = build_report(rows, bootstrap=0)["studies"][0]
    assert study["headline"]["accuracy"]["ci"] is None and "no interval" in study["headline"]["accuracy"]["note"]


def test_display_rounds_the_headline_only_for_people(with_late_reader):
    complete, _ = with_late_reader
    report = build_report(complete, bootstrap=0)
    shown = for_display(report)
    value = report["studies"][0]["headline"]["accuracy"]["se"]
    assert shown["studies"][0]["headline"]["accuracy"]["se"] == round(value, 4) != value

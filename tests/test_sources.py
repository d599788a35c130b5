"""Several synthetic sources in one study: the tidy source column, the report's
per-source figures and Obuchowski-Rockette comparison with cases nested in
sources (mrmc.ragged_*), its size and power by simulation, and the exports."""

import dataclasses
import io
import json

import numpy as np
import pytest
from django.core.management import call_command

from readerstudy.analysis.imrmc import from_imrmc, mrmc_report, to_imrmc
from readerstudy.analysis.statistics.mrmc import ragged_obuchowski_rockette, ragged_obuchowski_rockette_proportion
from readerstudy.analysis.report.plots import report_figures
from readerstudy.analysis.report import build_report
from readerstudy.analysis.report.format import for_display
from readerstudy.analysis.tidy import TidyFormatError, check_rows, read_csv, simulate_rows, write_csv

READERS = {f"r{i:02d}": (["radiologist", "orthopaedic_surgeon"][i % 2], 0.72) for i in range(8)}
PLANTED = {"gan-a": 0.0, "gan-b": -0.15}  # gan-b's images fool readers more: accuracy 0.15 lower


@pytest.fixture(scope="module")
def paired():
    rows = simulate_rows(study="two gans", design="paired", readers=READERS, n_cases=300, seed=41, sources=PLANTED)
    return rows, build_report(rows, bootstrap=0)


@pytest.fixture(scope="module")
def mixed():
    rows = simulate_rows(study="gan vs ct", design="mixed", readers=READERS, n_cases=400, seed=43, sources=PLANTED)
    return rows, build_report(rows, bootstrap=0)


# --- the tidy column ------------------------------------------------------------------------


def test_simulated_rows_name_their_source(paired, mixed):
    rows, _ = paired
    source = {row.case: row.source for row in rows}
    assert sorted(set(source.values())) == ["gan-a", "gan-b"]
    assert sum(s == "gan-a" for s in source.values()) == 150
    rows, _ = mixed
    assert {row.source for row in rows if row.truth == "real"} == {""}
    assert {row.source for row in rows if row.truth == "synthetic"} == {"gan-a", "gan-b"}


def test_csv_round_trip_keeps_sources(mixed):
    rows, report = mixed
    buffer = io.StringIO()
    write_csv(rows, buffer)
    buffer.seek(0)
    back = read_csv(buffer)
    assert back == rows
    assert build_report(back, bootstrap=0) == report


def test_one_source_per_case():
    rows = simulate_rows(design="mixed", readers={"a": ("other", 0.6), "b": ("other", 0.6)}, n_cases=6, seed=1,
                         sources={"gan-a": 0, "gan-b": 0})
    synthetic = next(i for i, row in enumerate(rows) if row.source)
    changed = rows[:]
    other = "gan-b" if rows[synthetic].source == "gan-a" else "gan-a"
    changed[synthetic] = dataclasses.replace(rows[synthetic], source=other)
    with pytest.raises(TidyFormatError, match="case has source"):
        check_rows(changed)
    real = next(row for row in rows if row.truth == "real")
    with pytest.raises(ValueError, match="source must be empty for a real image"):
        dataclasses.replace(real, source="gan-a")


# --- the report -----------------------------------------------------------------------------


def test_one_source_leaves_the_report_as_it_was():
    readers = {"a": ("radiologist", 0.7), "b": ("other", 0.6), "c": ("other", 0.65)}
    plain = simulate_rows(design="mixed", readers=readers, n_cases=60, seed=3)
    named = simulate_rows(design="mixed", readers=readers, n_cases=60, seed=3, sources={"gan-a": 0.0})
    assert [dataclasses.replace(row, source="") for row in named] == plain
    before, after = build_report(plain, bootstrap=50)["studies"][0], build_report(named, bootstrap=50)["studies"][0]
    assert "sources" not in before and "sources" not in after
    assert "gan-a" in after["mrmc"].pop("comparison_note")
    before["mrmc"].pop("comparison_note")
    # Per-case results and reading times name the source where the rows do (issue 13); the figures are the same.
    assert {c["source"] for c in after.pop("cases")["cases"]} == {"gan-a", None}
    assert {c["source"] for c in before.pop("cases")["cases"]} == {None}
    assert [g["median"] for g in after.pop("reading_time")["by_source"]] == \
        [g["median"] for g in before.pop("reading_time")["by_source"]]
    assert after == before


def test_paired_sources_planted_difference(paired):
    rows, report = paired
    study = report["studies"][0]
    sources = study["sources"]
    assert sources["names"] == ["gan-a", "gan-b"] and set(sources["comparisons"]) == {"accuracy"}
    comparison = sources["comparisons"]["accuracy"]
    assert (comparison["n"], comparison["n_readers"], comparison["n_per_source"]) == (
        300, 8, {"gan-a": 150, "gan-b": 150})
    (difference,) = comparison["differences"]
    assert difference["label"] == "gan-a - gan-b"
    assert difference["ci"][0] <= 0.15 <= difference["ci"][1] and difference["p"] < 0.01
    # Two sources: the F test is the square of the difference's t test.
    assert comparison["test"]["df1"] == 1 and comparison["test"]["p"] == pytest.approx(difference["p"], rel=1e-3)
    assert comparison["test"]["statistic"] == pytest.approx(difference["statistic"] ** 2, rel=1e-3)
    # Disjoint case sets: the covariance between sources is zero by construction.
    assert comparison["covariances"]["cov1"] == pytest.approx(0, abs=1e-15) and comparison["covariances"]["cov3"] == pytest.approx(0, abs=1e-15)
    for entry, truth in zip(sources["per_source"], (0.72, 0.57)):
        single = entry["mrmc_accuracy"]
        assert single["ci"][0] <= truth <= single["ci"][1] and single["n"] == 150
        pooled = entry["accuracy"]
        assert pooled["n"] == 8 * 150 and pooled["unit"] == "answer"
        assert pooled["ci_wilson"][0] <= truth <= pooled["ci_wilson"][1]
    assert "zero by construction" in sources["design"]


def test_a_source_alone_is_the_study_of_its_cases(paired, mixed):
    """Per-source single-treatment figures equal the ordinary report of that source's cases alone."""
    rows, report = paired
    entry = report["studies"][0]["sources"]["per_source"][0]
    alone = build_report([row for row in rows if row.source == entry["source"]], bootstrap=0)["studies"][0]
    expected = alone["groups"][0]["mrmc_accuracy"]
    for key in ("estimate", "se", "df", "ci", "statistic", "p", "n", "n_readers"):
        assert entry["mrmc_accuracy"][key] == expected[key], key
    rows, report = mixed
    entry = report["studies"][0]["sources"]["per_source"][1]
    alone = build_report([row for row in rows if row.source in ("", entry["source"])], bootstrap=0)["studies"][0]
    for key in ("estimate", "se", "df", "ci", "statistic", "p", "n", "n_readers"):
        assert entry["mrmc_auc"][key] == alone["groups"][0]["auc"][key], key
    assert entry["mrmc_sensitivity"]["estimate"] == pytest.approx(alone["groups"][0]["sensitivity"]["estimate"],
                                                                  abs=1e-4)


def test_mixed_sources_planted_difference(mixed):
    _, report = mixed
    sources = report["studies"][0]["sources"]
    sensitivity, auc = sources["comparisons"]["sensitivity"], sources["comparisons"]["auc"]
    assert sensitivity["n_per_source"] == {"gan-a": 100, "gan-b": 100}
    assert auc["n"] == 400 and auc["n_per_source"] == {"gan-a": 300, "gan-b": 300}  # real cases shared
    (difference,) = sensitivity["differences"]
    assert difference["ci"][0] <= 0.15 <= difference["ci"][1] and difference["p"] < 0.01
    assert auc["differences"][0]["estimate"] > 0 and auc["test"]["p"] < 0.05
    # Shared real cases make the AUCs of two sources covary; nested synthetic cases do not.
    assert auc["covariances"]["cov1"] > 0 and sensitivity["covariances"]["cov1"] == pytest.approx(0, abs=1e-15)
    for entry in sources["per_source"]:
        assert entry["mrmc_sensitivity"]["p"] is None and "chance" in entry["mrmc_sensitivity"]["note"]
        assert entry["mrmc_auc"]["p"] < 1e-3 and entry["mrmc_auc"]["n"] == 300


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_source_figure_states_method_unit_and_n(paired, mixed):
    for _, report in (paired, mixed):
        sources = report["studies"][0]["sources"]
        figures = [node for node in _walk(sources) if "estimate" in node]
        assert len(figures) >= 5
        for figure in figures:
            assert figure["method"] and figure["unit"] and isinstance(figure["n"], int), figure
        for comparison in sources["comparisons"].values():
            assert comparison["method"] and comparison["unit"] and isinstance(comparison["n"], int)
        json.dumps(report, allow_nan=False)


def test_unnamed_synthetic_cases_are_left_out_with_a_note(paired):
    rows, _ = paired
    cases = sorted({row.case for row in rows})[:4]
    rows = [dataclasses.replace(row, source="") if row.case in cases else row for row in rows]
    sources = build_report(rows, bootstrap=0)["studies"][0]["sources"]
    assert sources["n_unnamed"] == 4 and "4 synthetic cases name no source" in sources["note"]
    assert sources["comparisons"]["accuracy"]["n"] == 296


def test_degenerate_sources_give_notes():
    rows = simulate_rows(design="paired", readers={"a": ("other", 0.6)}, n_cases=8, seed=2,
                         sources={"x": 0, "y": 0})
    sources = build_report(rows, bootstrap=0)["studies"][0]["sources"]
    assert sources["comparisons"]["accuracy"]["note"] == "not defined: needs at least two readers"
    assert sources["per_source"][0]["mrmc_accuracy"]["estimate"] is None
    perfect = simulate_rows(design="paired", readers={"a": ("other", 1.0), "b": ("other", 1.0)}, n_cases=8, seed=2,
                            sources={"x": 0, "y": 0})
    comparison = build_report(perfect, bootstrap=0)["studies"][0]["sources"]["comparisons"]["accuracy"]
    assert comparison["test"] is None and comparison["note"].startswith("F test not defined")
    assert comparison["differences"][0]["ci"] is None
    json.dumps(comparison, allow_nan=False)


# --- page, figure and exports ---------------------------------------------------------------


def test_figure_and_page_show_the_comparison(mixed, tmp_path):
    rows, report = mixed
    figures = report_figures(report)
    assert "0-sources" in figures and "gan-b" in figures["0-sources"]
    path = tmp_path / "answers.csv"
    with path.open("w", newline="") as handle:
        write_csv(rows, handle)
    out = io.StringIO()
    call_command("analyze", str(path), format="html", bootstrap=0, stdout=out)
    page = out.getvalue()
    assert "Synthetic sources compared" in page
    difference = for_display(report)["studies"][0]["sources"]["comparisons"]["auc"]["differences"][0]
    assert f"[{difference['ci'][0]}, {difference['ci'][1]}]" in page
    assert page.count("<svg") >= 6


def test_imrmc_export_writes_each_source_as_a_modality(mixed):
    rows, report = mixed
    text = to_imrmc(rows)
    assert "NM: 2" in text.splitlines()
    data = from_imrmc(text)
    assert data.modalities == ["gan-a", "gan-b"]
    real = [case for case, truth in data.truth.items() if truth == 0]
    assert all(("gan-a", "r00", case) in data.scores and ("gan-b", "r00", case) in data.scores for case in real)
    imported = mrmc_report(data)
    assert imported["design"] == "ragged" and imported["n_cases"] == 400
    analysis = imported["analyses"]["random_readers_random_cases"]
    sources = report["studies"][0]["sources"]
    auc = sources["comparisons"]["auc"]
    assert analysis["test"] == auc["test"]
    (mine,) = analysis["differences"]
    for key in ("estimate", "se", "df", "ci", "statistic", "p"):
        assert mine[key] == auc["differences"][0][key], key
    for treatment, entry in zip(analysis["treatments"], sources["per_source"], strict=True):
        for key in ("estimate", "se", "df", "ci", "statistic", "p", "n"):
            assert treatment[key] == entry["mrmc_auc"][key], key


# --- the nested-case analysis by simulation -----------------------------------------------------


def _paired_study(rng, shift_b, readers=6, cases=60):
    """Proportion correct with reader, case and reader x source effects on the
    probability scale (no clipping needed): true accuracies 0.7 and 0.7 + shift_b."""
    reader = rng.uniform(-0.05, 0.05, (readers, 1))
    out = np.full((2, readers, 2 * cases), np.nan)
    for t, shift in enumerate((0.0, shift_b)):
        p = 0.7 + shift + reader + rng.uniform(-0.03, 0.03, (readers, 1)) + rng.uniform(-0.2, 0.2, cases)
        out[t, :, t * cases:(t + 1) * cases] = rng.random((readers, cases)) < p
    return out


def _mixed_scores(rng, mu_b, readers=5, real=40, per_source=20):
    """Continuous scores: real cases shared by both sources, synthetic cases nested."""
    n = real + 2 * per_source
    latent = rng.normal(0, 1, n)
    latent[real:real + per_source] += 1.0
    latent[real + per_source:] += mu_b
    scores = latent + rng.normal(0, 0.3, (readers, 1)) + rng.normal(0, 0.8, (readers, n))
    truth = np.r_[np.zeros(real, int), np.ones(2 * per_source, int)]
    cube = np.full((2, readers, n), np.nan)
    cube[0][:, :real + per_source] = scores[:, :real + per_source]
    cube[1][:, :real] = scores[:, :real]
    cube[1][:, real + per_source:] = scores[:, real + per_source:]
    return cube, truth


def test_f_test_size_and_power_by_simulation():
    """Equal sources: the F test rejects near 5%; a planted difference is found and covered."""
    rng = np.random.default_rng(2025)
    null = [ragged_obuchowski_rockette_proportion(_paired_study(rng, 0.0)).random_readers_random_cases
            for _ in range(300)]
    size = np.mean([a.test.p < 0.05 for a in null])
    assert 0.02 <= size <= 0.09, size  # 300 studies: the rate's SE is about 0.013 at 5%
    assert np.mean([a.differences[0].ci[0] <= 0 <= a.differences[0].ci[1] for a in null]) == 1 - size
    planted = [ragged_obuchowski_rockette_proportion(_paired_study(rng, -0.15)).random_readers_random_cases
               for _ in range(100)]
    power = np.mean([a.test.p < 0.05 for a in planted])
    covered = np.mean([a.differences[0].ci[0] <= 0.15 <= a.differences[0].ci[1] for a in planted])
    assert power >= 0.8 and covered >= 0.9, (power, covered)


def test_auc_f_test_size_with_shared_real_cases():
    rng = np.random.default_rng(7)
    null = [ragged_obuchowski_rockette(*_mixed_scores(rng, 1.0)).random_readers_random_cases for _ in range(200)]
    size = np.mean([a.test.p < 0.05 for a in null])
    assert 0.015 <= size <= 0.10, size
    cube, truth = _mixed_scores(rng, 0.0, real=80, per_source=60)
    analysis = ragged_obuchowski_rockette(cube, truth).random_readers_random_cases
    assert analysis.test.p < 0.05 and analysis.differences[0].estimate > 0

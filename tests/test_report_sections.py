"""Per-case results, reading time, stamps and sizing from the pilot."""

import csv
import io
import json

import numpy as np
import pytest
from django.test import Client

from readerstudy.analysis.report import build_report
from readerstudy.analysis.report.cases import CASE_COLUMNS, case_rows
from readerstudy.analysis.report.reading_time import median_interval
from readerstudy.analysis.report.stamps import make_stamp
from readerstudy.analysis.statistics.power import sds_from_components
from readerstudy.analysis.tidy import simulate_rows
from tests.test_analysis_pages import analyst_client, read_everything  # noqa: F401  (fixture)

READERS = {"r1": ("radiologist", 0.6), "r2": ("radiologist", 0.7), "r3": ("orthopaedic_surgeon", 0.55)}


@pytest.fixture(scope="module")
def mixed():
    rows = simulate_rows(study="s", design="mixed", readers=READERS, n_cases=40, seed=8)
    return rows, build_report(rows, bootstrap=0, machine_scores={"s": {"c0001": 0.25}})["studies"][0]


def test_per_case_shares_are_counts_of_wrong_answers(mixed):
    rows, study = mixed
    cases = {c["case"]: c for c in study["cases"]["cases"]}
    for case, result in cases.items():
        own = [r for r in rows if r.case == case and r.is_main]
        assert result["n_readers"] == 3 and result["n_wrong"] == sum(1 - r.correct for r in own)
        assert result["share_wrong"] == pytest.approx(result["n_wrong"] / 3)
        radiologists = [r for r in own if r.specialty == "radiologist"]
        assert result["specialties"]["radiologist"]["share_wrong"] == pytest.approx(
            sum(1 - r.correct for r in radiologists) / len(radiologists))
    ranked = study["cases"]["most_convincing_synthetic"]
    shares = [cases[c]["share_wrong"] for c in ranked]
    assert shares == sorted(shares, reverse=True) and all(cases[c]["truth"] == "synthetic" for c in ranked)
    assert all(cases[c]["truth"] == "real" and cases[c]["n_wrong"] for c in study["cases"]["real_called_synthetic"])
    assert study["cases"]["has_machine_score"] and cases["c0001"]["machine_score"] == 0.25
    assert cases["c0002"]["machine_score"] is None


def test_case_csv_rows(mixed):
    _, study = mixed
    rows = case_rows({"studies": [study]})
    assert len(rows) == 40 and set(rows[0]) == set(CASE_COLUMNS)
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=CASE_COLUMNS).writerows(rows)  # flat, writable
    assert rows[0]["n_radiologist"] == 2 and rows[0]["n_other"] == 0 and rows[0]["share_wrong_other"] is None


def test_reading_time_by_source_reader_and_correctness(mixed):
    rows, study = mixed
    rt = study["reading_time"]
    main = [r for r in rows if r.is_main]
    assert rt["all"]["median"] == pytest.approx(float(np.median([r.reading_ms for r in main])))
    assert {g["group"] for g in rt["by_source"]} == {"real", "synthetic"}
    assert {g["group"] for g in rt["by_reader"]} == set(READERS)
    assert {g["group"]: g["n"] for g in rt["by_correctness"]} == {
        "correct": sum(r.correct for r in main), "wrong": sum(1 - r.correct for r in main)}
    for group in rt["by_reader"]:
        assert group["ci"][0] <= group["median"] <= group["ci"][1]


def test_outliers_are_flagged_not_dropped():
    rows = simulate_rows(study="s", design="paired", readers=READERS, n_cases=30, seed=2)
    slow = rows[5].__class__(**{**rows[5].__dict__, "reading_ms": 600_000,
                                "answered_at": "2025-01-06T23:00:00Z"})
    rows[5] = slow
    study = build_report(rows, bootstrap=0)["studies"][0]
    rt = study["reading_time"]
    assert rt["outliers"] == [{"reader": slow.reader, "case": slow.case, "reading_ms": 600_000}]
    assert rt["all"]["n"] == 90 and rt["all"]["n_outliers"] == 1


def test_median_interval_covers_at_least_95_percent():
    rng = np.random.default_rng(1)
    covered = sum(lo <= 0 <= hi for lo, hi in (median_interval(rng.normal(size=25)) for _ in range(2000)))
    assert covered / 2000 >= 0.94
    assert median_interval(np.arange(5.0)) is None


def test_stamp_names_time_software_state_and_last_answer(mixed):
    rows, _ = mixed
    stamp = make_stamp(rows, source="site", states={"s": {"state": "closed", "protocol_hash": "abc"}})
    assert stamp["software"].startswith("readerstudy") and stamp["generated_at"].endswith("Z")
    (study,) = stamp["studies"]
    assert study == {"study": "s", "state": "closed", "protocol_hash": "abc",
                     "last_answer_at": max(r.answered_at for r in rows)}


def test_pilot_components_recover_the_simulated_spread():
    """The delta-method conversion gives back the logit SDs a pilot was simulated with, roughly."""
    from scipy import special

    rng = np.random.default_rng(5)
    readers, cases, reader_sd, case_sd = 40, 400, 0.4, 0.8
    a = rng.normal(0, reader_sd, (readers, 1))
    b = rng.normal(0, case_sd, (1, cases))
    correct = (rng.random((readers, cases)) < special.expit(0.4 + a + b)).astype(float)
    from readerstudy.analysis.report.mrmc import or_tables
    from readerstudy.analysis.statistics.mrmc import obuchowski_rockette_proportion

    result = obuchowski_rockette_proportion(correct[None])
    components = or_tables(result, cases)["components"]
    got_reader, got_case = sds_from_components(components["var_r"], components["cov2"], cases, correct.mean())
    assert got_reader == pytest.approx(reader_sd, rel=0.35) and got_case == pytest.approx(case_sd, rel=0.35)


@pytest.mark.django_db
def test_site_pages_for_cases_power_and_gallery(make_study, readers, analyst_client):  # noqa: F811
    study = make_study("mixed", cases=10)
    read_everything(study, readers)
    page = analyst_client.get(f"/studies/{study.pk}/report/").content.decode()
    assert "Per-case results" in page and "Reading time" in page and "case-gallery" in page
    rows = list(csv.DictReader(io.StringIO(analyst_client.get(f"/studies/{study.pk}/cases.csv").content.decode())))
    assert len(rows) == 10 and tuple(rows[0]) == CASE_COLUMNS
    summary = analyst_client.get(f"/studies/{study.pk}/summary.csv").content.decode()
    assert "kappa_answer_vs_truth" in summary.splitlines()[0] and "fleiss_kappa_between_readers" in summary
    image = analyst_client.get(f"/studies/{study.pk}/cases/1/real.png")
    synthetic = analyst_client.get(f"/studies/{study.pk}/cases/1/synthetic.png")
    assert image.status_code == 200 or synthetic.status_code == 200
    reader = Client()
    reader.force_login(readers[0])
    assert reader.get(f"/studies/{study.pk}/cases/1/real.png").status_code == 403
    assert reader.get(f"/studies/{study.pk}/cases.csv").status_code == 403
    power = analyst_client.get(f"/studies/{study.pk}/power/?readers=4,8&cases=20,40").content.decode()
    assert "this study&#x27;s own readings" in power or "this study's own readings" in power
    assert power.count("80% power") == 2  # both goals: equivalence and difference from chance
    entered = analyst_client.get(f"/studies/{study.pk}/power/?source=entered&reader_sd=0.2&case_sd=0.5"
                                 "&readers=4&cases=20&goal=equivalence").content.decode()
    assert "entered standard deviations" in entered and entered.count("80% power") == 1
    report = json.loads(analyst_client.get(f"/studies/{study.pk}/report.json").content)
    assert report["studies"][0]["mrmc"]["accuracy"]["or_tables"]["components"]["var_error"] is not None

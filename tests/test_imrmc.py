"""iMRMC input files: export of mixed studies, import with checks, and the OR AUC analysis of them."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from readerstudy.analysis.imrmc import (
    BEGIN,
    FORMAT,
    ImrmcFormatError,
    flat_rows,
    from_imrmc,
    is_imrmc,
    mrmc_report,
    to_imrmc,
)
from readerstudy.analysis.report import build_report
from readerstudy.analysis.report.matrix import ordinal_score
from readerstudy.analysis.tidy import first_readings, simulate_rows, write_csv

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "vandyke"
READERS = {f"r{i}": (["radiologist", "orthopaedic_surgeon", "other"][i % 3], 0.55 + 0.05 * (i % 4)) for i in range(7)}


@pytest.fixture(scope="module")
def mixed():
    return simulate_rows(study="knee, 2025", design="mixed", readers=READERS, n_cases=80, seed=31, repeats=8)


def test_export_format(mixed):
    text = to_imrmc(mixed)
    lines = text.splitlines()
    begin = lines.index(BEGIN)
    header = lines[:begin]
    assert header[0].startswith("readerstudy export of study 'knee, 2025'")
    assert {"NR: 7", "N0: 40", "N1: 40", "NM: 1"} <= set(header)
    data = [line.split(",") for line in lines[begin + 1:]]
    truth = [d for d in data if d[0] == "-1"]
    readings = [d for d in data if d[0] != "-1"]
    assert len(truth) == 80 and {d[2] for d in truth} == {"0"} and {d[3] for d in truth} == {"0", "1"}
    assert len(readings) == 7 * 80  # first readings only, repeats left out
    assert {d[2] for d in readings} == {"knee__2025"}  # the study name as a modality ID
    first, _ = first_readings(mixed)
    score = {(row.reader, row.case): ordinal_score(row) for row in first}
    assert all(int(d[3]) == score[d[0], d[1]] for d in readings)
    truth_of = {row.case: row.truth for row in first}
    assert all((d[3] == "1") == (truth_of[d[1]] == "synthetic") for d in truth)
    assert is_imrmc(text) and not is_imrmc("study,design\n")


def test_round_trip_gives_the_same_or_auc_figures(mixed):
    report = mrmc_report(from_imrmc(to_imrmc(mixed)))
    assert report["format"] == FORMAT
    assert (report["n_readers"], report["n_cases"], report["n_positive"], report["n_negative"]) == (7, 80, 40, 40)
    assert report["header_check"] is None and report["note"] is None
    pooled = build_report(mixed, bootstrap=0)["studies"][0]["groups"][0]["auc"]
    (single,) = report["analyses"]["random_readers_random_cases"]["treatments"]
    for key in ("estimate", "se", "df", "ci", "statistic", "p", "n", "n_readers"):
        assert single[key] == pooled[key], key
    tidy_mrmc = build_report(mixed, bootstrap=0)["studies"][0]["mrmc"]["auc"]
    for name in ("fixed_readers_random_cases", "random_readers_fixed_cases"):
        (mine,) = report["analyses"][name]["treatments"]
        assert (mine["estimate"], mine["se"], mine["ci"]) == (tidy_mrmc[name]["estimate"], tidy_mrmc[name]["se"],
                                                              tidy_mrmc[name]["ci"])
    reader = next(g for g in build_report(mixed, bootstrap=0)["studies"][0]["groups"] if g["label"] == "r0")
    mine = next(r for r in report["readers"] if r["reader"] == "r0")
    assert (mine["estimate"], mine["se"], mine["roc"]) == (reader["auc"]["estimate"], reader["auc"]["se"],
                                                           reader["auc"]["roc"])


def test_analyze_command_round_trip(mixed, tmp_path):
    tidy = tmp_path / "answers.csv"
    with tidy.open("w", newline="") as handle:
        write_csv(mixed, handle)
    exported = tmp_path / "study.imrmc"
    exported.write_text(to_imrmc(mixed))
    from_tidy, from_file = io.StringIO(), io.StringIO()
    call_command("analyze", str(tidy), format="json", bootstrap=0, stdout=from_tidy)
    call_command("analyze", str(exported), format="json", stdout=from_file)
    pooled = json.loads(from_tidy.getvalue())["studies"][0]["groups"][0]["auc"]
    (single,) = json.loads(from_file.getvalue())["analyses"]["random_readers_random_cases"]["treatments"]
    assert [single[k] for k in ("estimate", "se", "df", "ci")] == [pooled[k] for k in ("estimate", "se", "df", "ci")]
    table = io.StringIO()
    call_command("analyze", str(exported), format="csv", stdout=table)
    rows = list(csv.DictReader(io.StringIO(table.getvalue())))
    assert [r for r in rows if r["row"] == "modality" and r["analysis"] == "random_readers_random_cases"][0][
        "estimate"] == str(pooled["estimate"])
    page = io.StringIO()
    call_command("analyze", str(exported), format="html", stdout=page)
    html = page.getvalue()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and f">{round(pooled['estimate'], 4)}<" in html


def test_paired_and_mixed_up_exports_are_refused(mixed):
    paired = simulate_rows(study="p", design="paired", readers=READERS, n_cases=10, seed=1)
    with pytest.raises(ImrmcFormatError, match="no score per image"):
        to_imrmc(paired)
    with pytest.raises(ImrmcFormatError, match="one study at a time"):
        to_imrmc(mixed + simulate_rows(study="other", design="mixed", readers=READERS, n_cases=10, seed=1))
    unrated = [row.__class__(**{**row.__dict__, "confidence": None}) for row in mixed]
    with pytest.raises(ImrmcFormatError, match="confidence"):
        to_imrmc(unrated)


GOOD = "title\nNR: 2\nN0: 2\nN1: 2\nNM: 1\nBEGIN DATA:\n" + "".join(
    f"-1,{c},0,{t}\n" for c, t in ((1, 0), (2, 0), (3, 1), (4, 1))
) + "".join(f"{r},{c},m,{s}\n" for r in ("a", "b") for c, s in ((1, 1), (2, 3), (3, 2), (4, 5)))


@pytest.mark.parametrize("text, message", [
    ("no data here\n", "no 'BEGIN DATA:' line"),
    (GOOD.replace("a,1,m,1", "a,1,m"), "line 11: expected readerID,caseID,modalityID,score; found 3"),
    (GOOD.replace("a,1,m,1", "a,1,m,high"), "line 11: score 'high' is not a number"),
    (GOOD.replace("-1,1,0,0", "-1,1,0,2"), "line 7: truth of case '1' must be 0 or 1"),
    (GOOD + "-1,1,0,1\n", "case '1' has two different truths"),
    (GOOD + "a,1,m,4\n", "reader 'a' scores case '1' in modality 'm' twice"),
    (GOOD + "a,9,m,4\n", "no truth row (readerID -1) for case '9'"),
    (GOOD.replace("NR: 2", "NR: two"), "line 2: NR is not a whole number"),
    ("BEGIN DATA:\n\n", "no readings"),
])
def test_bad_files_are_named(text, message):
    with pytest.raises(ImrmcFormatError) as error:
        from_imrmc(text)
    assert message in str(error.value)


def test_small_file_header_check_and_missing_readings():
    data = from_imrmc(GOOD.replace("NR: 2", "NR: 3").replace("b,4,m,5\n", "").replace("-1,1,0,0", "truth,1,truth,0"))
    assert data.readers == ["a", "b"] and data.cases == ["1", "2", "3", "4"] and data.declared["NR"] == 3
    report = mrmc_report(data)
    assert report["header_check"] == "header says NR: 3, the data have 2"
    assert report["n_cases"] == 3 and report["n_cases_left_out"] == 1
    assert report["analyses"]["random_readers_random_cases"] is None  # only one signal-present case left
    assert report["note"].startswith("not defined")
    assert len(report["readers"]) == 2 and report["readers"][1]["n"] == 3
    json.dumps(report, allow_nan=False)
    assert flat_rows(report)[0]["analysis"] == "reader"


@pytest.fixture(scope="module")
def vandyke_text():
    data = REFERENCE / "dataset02.csv"
    if not data.exists():
        pytest.skip(f"Van Dyke reference data not found in {REFERENCE.resolve()} (kept outside the repository)")
    lines = ["Van Dyke et al. (1993), RJafroc dataset02", "NR: 5", "N0: 69", "N1: 45", "NM: 2", "BEGIN DATA:"]
    truth = {}
    readings = []
    with data.open(newline="") as handle:
        for row in csv.DictReader(handle):
            truth[row["case"]] = row["truth"]
            readings.append(f"reader{row['reader']},{row['case']},{'cine' if row['modality'] == '0' else 'spin-echo'},"
                            f"{row['rating']}")
    lines += [f"-1,{case},0,{value}" for case, value in truth.items()] + readings
    return "\n".join(lines) + "\n"


def test_van_dyke_through_the_imrmc_reader(vandyke_text):
    report = mrmc_report(from_imrmc(vandyke_text))
    assert (report["n_readers"], report["n_cases"], report["header_check"]) == (5, 114, None)
    analysis = report["analyses"]["random_readers_random_cases"]
    assert analysis["test"]["statistic"] == pytest.approx(4.46, abs=0.005)
    assert analysis["test"]["df2"] == pytest.approx(15.26, abs=0.005)
    assert analysis["test"]["p"] == pytest.approx(0.0517, abs=0.00005)
    (difference,) = analysis["differences"]
    assert difference["label"] == "cine - spin-echo"
    assert [t["modality"] for t in analysis["treatments"]] == ["cine", "spin-echo"]


def test_command_errors_for_bad_imrmc(tmp_path):
    path = tmp_path / "bad.imrmc"
    path.write_text(GOOD + "a,1,m,4\n")
    with pytest.raises(CommandError, match="twice"):
        call_command("analyze", str(path), stdout=io.StringIO())

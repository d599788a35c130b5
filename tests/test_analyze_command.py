"""`manage.py analyze` prints the same report as build_report, in three formats."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from readerstudy.analysis.report import FLAT_COLUMNS, build_report
from readerstudy.analysis.report.format import for_display
from readerstudy.analysis.tidy import simulate_rows, write_csv

READERS = {"r1": ("radiologist", 0.7), "r2": ("radiologist", 0.65), "r3": ("other", 0.5)}


@pytest.fixture(scope="module")
def study_csv(tmp_path_factory):
    rows = simulate_rows(study="cli", design="mixed", readers=READERS, n_cases=40, seed=5)
    path = tmp_path_factory.mktemp("analyze") / "answers.csv"
    with path.open("w", newline="") as handle:
        write_csv(rows, handle)
    return path, rows


def analyze(*args, **options) -> str:
    out = io.StringIO()
    call_command("analyze", *map(str, args), stdout=out, **options)
    return out.getvalue()


def test_json_is_the_report(study_csv):
    path, rows = study_csv
    text = analyze(path, format="json", bootstrap=200)
    report = json.loads(text)
    stamp = report.pop("stamp")
    assert stamp["source"] == f"file {path.name}" and stamp["software"].startswith("readerstudy")
    assert stamp["studies"][0]["last_answer_at"] == max(row.answered_at for row in rows)
    assert report == {k: v for k, v in build_report(rows, bootstrap=200).items() if k != "stamp"}
    assert text.startswith("{\n  \"format\"")  # indented, keys sorted


def test_csv_is_the_flat_table(study_csv):
    path, _ = study_csv
    table = list(csv.DictReader(io.StringIO(analyze(path, format="csv", bootstrap=0))))
    assert tuple(table[0]) == FLAT_COLUMNS
    assert [row["level"] for row in table] == ["pooled", "specialty", "specialty", "reader", "reader", "reader"]


def test_html_prints_the_numbers_of_the_dict(study_csv):
    """The page shows the dict's numbers rounded for display (for_display); the JSON keeps them whole."""
    path, rows = study_csv
    page = analyze(path, format="html", bootstrap=200)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    report = for_display(build_report(rows, bootstrap=200))
    pooled = report["studies"][0]["groups"][0]
    low, high = pooled["accuracy"]["ci_clopper_pearson"]
    assert f"[{low}, {high}]" in page
    assert f">{pooled['accuracy']['binomial_p']}<" in page
    assert f">{pooled['auc']['estimate']}<" in page
    assert f">{report['studies'][0]['agreement']['estimate']}<" in page


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("", "empty"),
    ("study,design\n", "header"),
    (",".join(["x"] * 15) + "\n", "header"),
])
def test_bad_files_give_command_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CommandError, match=message):
        analyze(path)


def test_header_only_and_binary_files(tmp_path, study_csv):
    header_only = tmp_path / "header.csv"
    header_only.write_text(study_csv[0].read_text().splitlines()[0] + "\n")
    with pytest.raises(CommandError, match="no answers"):
        analyze(header_only)
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(CommandError, match="UTF-8"):
        analyze(binary)


def test_bad_margin(study_csv):
    with pytest.raises(CommandError, match="margin"):
        analyze(study_csv[0], margin=0.7)


def test_html_has_figures_and_the_print_stylesheet(study_csv):
    path, _ = study_csv
    page = analyze(path, format="html", bootstrap=50)
    assert page.count("<svg") >= 5 and "@media print" in page
    assert "Multi-reader multi-case analysis" in page and "Specialty as a factor" in page


def test_choices_declare_further_questions(tmp_path):
    rows = simulate_rows(study="cli", design="mixed", readers=READERS, n_cases=30, seed=6, grade="kl_grade")
    path = tmp_path / "graded.csv"
    with path.open("w", newline="") as handle:
        write_csv(rows, handle)
    graded = json.loads(analyze(path, format="json", bootstrap=20, choices=["kl_grade=0,1,2,3,4,5"]))
    (question,) = graded["studies"][0]["further_questions"]
    assert question["categories"] == ["0", "1", "2", "3", "4", "5"] and question["kind"] == "choice"
    text = json.loads(analyze(path, format="json", bootstrap=20, choices=["kl_grade="]))
    assert text["studies"][0]["further_questions"][0]["kind"] == "text"
    with pytest.raises(CommandError, match="KEY=A,B,C"):
        analyze(path, choices=["kl_grade"])


def test_correct_is_empty_without_a_reference(tmp_path):
    """An answer with no reference is neither right nor wrong; files written before that rule
    (correct 0 with an empty truth) still read, as empty."""
    from readerstudy.analysis.tidy import COLUMNS, AnswerRow, read_csv

    common = dict(study="s", design="mixed", reader="r1", specialty="radiologist", years_experience=3, case="1",
                  position=1, served_at="2025-01-06T09:00:00Z", answered_at="2025-01-06T09:00:04Z", reading_ms=4000,
                  source="", confidence=None)
    row = AnswerRow(**common, question="comment", truth="", answer="sharp", correct=None)
    assert row.to_record()["correct"] == ""
    with pytest.raises(ValueError, match="correct must be empty"):
        AnswerRow(**common, question="comment", truth="", answer="sharp", correct=0)
    old = {**row.to_record(), "correct": "0"}
    path = tmp_path / "old.csv"
    path.write_text(",".join(COLUMNS) + "\n" + ",".join(old[c] for c in COLUMNS) + "\n")
    with path.open(newline="") as handle:
        (read,) = read_csv(handle)
    assert read.correct is None

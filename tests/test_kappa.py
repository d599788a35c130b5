"""Kappa for every question, checked against published figures through `analyze` on tidy CSVs.

Published examples:
- SAS PROC FREQ, AGREE option, on the 3 x 3 table [[0, 4, 1], [0, 8, 0], [0, 1, 5]] (SAS's
  printout, as statsmodels' test suite quotes it): simple kappa 0.4842, ASE 0.1380, 95% limits
  0.2137 and 0.7547, ASE under H0 0.1484, Z 3.2626, two-sided p 0.0011; weighted kappa
  (Cicchetti-Allison, i.e. linear weights) 0.4701, ASE 0.1457, limits 0.1845 and 0.7558, ASE under
  H0 0.1426, Z 3.2971, two-sided p 0.0010.
- Fleiss (1971), 30 patients each diagnosed by 6 psychiatrists into 5 categories: kappa 0.430; the
  SE under kappa = 0 of Fleiss, Nee & Landis (1979) as R's irr::kappam.fleiss prints it:
  kappa 0.4302445, z 17.65183.
"""

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from readerstudy.analysis.report import build_report
from readerstudy.analysis.statistics.kappa import agreement_weights, cohen_kappa_test, fleiss_kappa_test
from readerstudy.analysis.tidy import AnswerRow, write_csv

SAS_TABLE = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]
SAS_SIMPLE = {"estimate": "0.4842", "se": "0.1380", "ci": ("0.2137", "0.7547"), "se0": "0.1484", "z": "3.2626",
              "p": "0.0011"}
SAS_WEIGHTED = {"estimate": "0.4701", "se": "0.1457", "ci": ("0.1845", "0.7558"), "se0": "0.1426", "z": "3.2971",
                "p": "0.0010"}
# Fleiss (1971), Table 1 (statsmodels' and irr's `diagnoses`): per patient, the six diagnoses
# 1 depression, 2 personality disorder, 3 schizophrenia, 4 neurosis, 5 other.
DIAGNOSES = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]


def printed(value, text) -> bool:
    """value agrees with a printed figure to its printed precision."""
    decimals = len(text.partition(".")[2])
    return abs(value - float(text)) <= 0.5 * 10 ** -decimals + 1e-12


def _rows(answers: dict[str, dict[str, str]], key: str, reference: dict[str, str] | None = None) -> list[AnswerRow]:
    """A mixed study: every reader answers the main question and the further question `key` on every case."""
    rows = []
    for r, (reader, by_case) in enumerate(sorted(answers.items())):
        for position, (case, answer) in enumerate(sorted(by_case.items(), key=lambda item: int(item[0])), start=1):
            common = dict(study="published", design="mixed", reader=reader, specialty="radiologist",
                          years_experience=5, case=case, position=position, served_at="2025-01-06T09:00:00Z",
                          answered_at="2025-01-06T09:00:05Z", reading_ms=5000, source="")
            truth = "synthetic" if int(case) % 2 else "real"
            rows.append(AnswerRow(**common, question="real_or_synthetic", truth=truth, answer=truth, correct=1,
                                  confidence=3))
            label = (reference or {}).get(case, "")
            rows.append(AnswerRow(**common, question=key, truth=label, answer=answer,
                                  correct=int(answer == label) if label else None, confidence=None))
    return rows


def _analyze(rows, tmp_path, *options) -> dict:
    path = tmp_path / "answers.csv"
    with path.open("w", newline="") as handle:
        write_csv(rows, handle)
    out = io.StringIO()
    call_command("analyze", str(path), "--format", "json", "--bootstrap", "0", *options, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def sas_rows():
    """Rater A's category in the table's rows, rater B's in its columns, one case per count."""
    a, b, case = {}, {}, 0
    for i, row in enumerate(SAS_TABLE):
        for j, count in enumerate(row):
            for _ in range(count):
                case += 1
                a[str(case)], b[str(case)] = str(i + 1), str(j + 1)
    return _rows({"rater_a": a, "rater_b": b}, "grade")


def _check(figure, expected):
    assert printed(figure["estimate"], expected["estimate"]) and printed(figure["se"], expected["se"])
    assert printed(figure["ci"][0], expected["ci"][0]) and printed(figure["ci"][1], expected["ci"][1])
    assert printed(figure["se0"], expected["se0"]) and printed(figure["z"], expected["z"])
    assert printed(figure["p"], expected["p"])


def test_sas_simple_kappa_through_analyze(sas_rows, tmp_path):
    report = _analyze(sas_rows, tmp_path, "--choices", "grade=1,2,3", "--scale", "grade=nominal")
    (question,) = report["studies"][0]["further_questions"]
    assert question["scale"] == "nominal" and question["kappa"]["weights"] == ["none"]
    (pair,) = question["kappa"]["pairs"]
    assert (pair["a"], pair["b"], pair["kappas"]["none"]["n"]) == ("rater_a", "rater_b", 19)
    _check(pair["kappas"]["none"], SAS_SIMPLE)


def test_sas_weighted_kappa_through_analyze(sas_rows, tmp_path):
    report = _analyze(sas_rows, tmp_path, "--choices", "grade=1,2,3", "--scale", "grade=ordinal")
    (question,) = report["studies"][0]["further_questions"]
    assert question["scale"] == "ordinal" and question["kappa"]["weights"] == ["linear", "quadratic"]
    _check(question["kappa"]["pairs"][0]["kappas"]["linear"], SAS_WEIGHTED)


def test_custom_weights_through_analyze(sas_rows, tmp_path):
    """Linear weights written out as a custom matrix give SAS's weighted kappa again."""
    weights = tmp_path / "weights.csv"
    weights.write_text("1,0.5,0\n0.5,1,0.5\n0,0.5,1\n")
    report = _analyze(sas_rows, tmp_path, "--choices", "grade=1,2,3", "--scale", "grade=ordinal",
                      "--weights", f"grade={weights}")
    kappas = report["studies"][0]["further_questions"][0]["kappa"]["pairs"][0]["kappas"]
    _check(kappas["custom"], SAS_WEIGHTED)
    assert kappas["custom"]["estimate"] == pytest.approx(kappas["linear"]["estimate"], rel=1e-12)


def test_fleiss_1971_through_analyze(tmp_path):
    answers = {f"psychiatrist{r + 1}": {str(i + 1): str(row[r]) for i, row in enumerate(DIAGNOSES)} for r in range(6)}
    report = _analyze(_rows(answers, "diagnosis"), tmp_path, "--scale", "diagnosis=nominal")
    fleiss = report["studies"][0]["further_questions"][0]["kappa"]["fleiss"]
    assert (fleiss["n"], fleiss["n_readers"]) == (30, 6)
    assert printed(fleiss["estimate"], "0.430") and printed(fleiss["estimate"], "0.4302445")
    assert printed(fleiss["z"], "17.65183")
    assert fleiss["se0"] == pytest.approx(fleiss["estimate"] / fleiss["z"])
    assert fleiss["p"] < 1e-60 and fleiss["ci"][0] < fleiss["estimate"] < fleiss["ci"][1]


def test_fleiss_per_category_kappas_two_ways():
    """Fleiss' per-category kappas: the closed form agrees with each category collapsed to
    "this category or not" and analysed as a two-category Fleiss kappa."""
    counts = np.array([[row.count(c) for c in range(1, 6)] for row in DIAGNOSES])
    result = fleiss_kappa_test(counts)
    for j, value in enumerate(result.category_kappas):
        collapsed = np.column_stack([counts[:, j], counts.sum(axis=1) - counts[:, j]])
        assert value == pytest.approx(fleiss_kappa_test(collapsed).estimate, rel=1e-12)


def test_nominal_kappa_does_not_depend_on_the_order_of_the_choices(tmp_path):
    rng = np.random.default_rng(4)
    labels = ["fracture", "effusion", "normal", "other"]
    answers = {f"r{r}": {str(c + 1): labels[int(rng.integers(0, 4)) if rng.random() < 0.5 else c % 4] for c in range(40)}
               for r in range(4)}
    rows = _rows(answers, "finding")
    first = build_report(rows, bootstrap=0, questions={"finding": labels})
    second = build_report(rows, bootstrap=0, questions={"finding": labels[::-1]})
    a = first["studies"][0]["further_questions"][0]
    b = second["studies"][0]["further_questions"][0]
    assert a["scale"] == b["scale"] == "nominal" and a["scale_basis"].startswith("inferred")
    assert a["kappa"]["fleiss"]["estimate"] == pytest.approx(b["kappa"]["fleiss"]["estimate"], rel=1e-12)
    assert a["between_readers"]["all"]["estimate"] == pytest.approx(b["between_readers"]["all"]["estimate"], rel=1e-12)
    # Declared ordinal, the order matters (that is what ordinal means).
    ordinal = build_report(rows, bootstrap=0, questions={"finding": labels}, scales={"finding": "ordinal"})
    assert ordinal["studies"][0]["further_questions"][0]["kappa"]["weights"] == ["linear", "quadratic"]


@pytest.mark.parametrize("table, note", [
    ([[5, 0], [0, 0]], "one single category"),
    ([[0, 0], [0, 0]], "no items"),
    ([[4, 0], [0, 3]], "no interval"),
])
def test_degenerate_tables_say_why(table, note):
    result = cohen_kappa_test(table)
    assert note in result.note
    if "no interval" in note:
        assert result.estimate == 1.0 and result.ci is None  # perfect agreement: no zero-width interval


def test_fleiss_degenerate_cases_say_why():
    assert "one case" in fleiss_kappa_test([[3, 1]]).note
    assert "one category" in fleiss_kappa_test([[4, 0], [4, 0]]).note
    perfect = fleiss_kappa_test([[4, 0], [0, 4], [4, 0], [0, 4]])
    assert perfect.estimate == pytest.approx(1.0) and perfect.ci_jackknife is None and "no interval" in perfect.note


def test_bad_weights_are_refused(sas_rows, tmp_path):
    weights = tmp_path / "weights.csv"
    weights.write_text("1,0.5\n0.5,1\n")
    with pytest.raises(CommandError, match="3 x 3"):
        _analyze(sas_rows, tmp_path, "--choices", "grade=1,2,3", "--scale", "grade=ordinal", "--weights",
                 f"grade={weights}")
    with pytest.raises(CommandError, match="nominal or"):
        _analyze(sas_rows, tmp_path, "--scale", "grade=interval")
    with pytest.raises(ValueError):
        agreement_weights([[1, 2], [2, 1]], 2)


def test_report_kappas_never_print_a_zero_width_interval():
    from readerstudy.analysis.statistics.stats import cohens_kappa, fleiss_kappa

    perfect = cohens_kappa(["real", "synthetic"] * 5, ["real", "synthetic"] * 5, ["real", "synthetic"])
    assert perfect.estimate == 1.0 and perfect.ci is None and "no interval" in perfect.note
    one_case = fleiss_kappa([[2, 1]], n_boot=10)
    assert one_case.estimate is None and "one case" in one_case.note

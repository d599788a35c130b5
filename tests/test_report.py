"""The report recovers planted effects, is deterministic, and survives the CSV round trip."""

import dataclasses
import io
import json
import random
from decimal import Decimal

import numpy as np
import pytest
from statsmodels.stats import inter_rater

from readerstudy.analysis.mrmc import delong_auc
from readerstudy.analysis.report import FLAT_COLUMNS, build_report, flat_rows, ordinal_score
from readerstudy.analysis.stats import category_counts
from readerstudy.analysis.tidy import COLUMNS, AnswerRow, TidyFormatError, check_rows, read_csv, simulate_rows, write_csv

TRUE_ACCURACY = {"radiologist": 0.75, "orthopaedic_surgeon": 0.55}
READERS = {f"r{i:02d}": (specialty, TRUE_ACCURACY[specialty]) for i, specialty in
           enumerate(["radiologist", "orthopaedic_surgeon"] * 6)}


@pytest.fixture(scope="module")
def paired():
    rows = simulate_rows(study="paired study", design="paired", readers=READERS, n_cases=300, seed=11)
    return rows, build_report(rows, bootstrap=500)


@pytest.fixture(scope="module")
def mixed():
    rows = simulate_rows(study="mixed study", design="mixed", readers=READERS, n_cases=200, seed=12)
    return rows, build_report(rows, bootstrap=500)


def groups(report, level):
    return [g for g in report["studies"][0]["groups"] if g["level"] == level]


def test_planted_specialty_difference_is_recovered(paired):
    _, report = paired
    study = report["studies"][0]
    assert (study["n_readers"], study["n_cases"], study["n_answers"]) == (12, 300, 3600)
    specialty = {g["label"]: g for g in groups(report, "specialty")}
    assert list(specialty) == ["radiologist", "orthopaedic_surgeon"]  # the documented order
    for name, group in specialty.items():
        for ci in (group["accuracy"]["ci_clopper_pearson"], group["accuracy"]["ci_wilson"]):
            assert ci[0] <= TRUE_ACCURACY[name] <= ci[1]
    # The intervals separate the two specialties.
    assert specialty["radiologist"]["accuracy"]["ci_clopper_pearson"][0] > \
        specialty["orthopaedic_surgeon"]["accuracy"]["ci_clopper_pearson"][1]
    # Surgeons near chance are shown equivalent to it; radiologists are not.
    assert specialty["orthopaedic_surgeon"]["equivalence"]["verdict"] == "equivalent"
    assert specialty["radiologist"]["equivalence"]["verdict"] == "not equivalent"
    assert specialty["radiologist"]["accuracy"]["binomial_p"] < 1e-10
    readers = groups(report, "reader")
    covered = [g["accuracy"]["ci_clopper_pearson"][0] <= TRUE_ACCURACY[g["specialty"]]
               <= g["accuracy"]["ci_clopper_pearson"][1] for g in readers]
    assert len(readers) == 12 and sum(covered) >= 10
    (pooled,) = groups(report, "pooled")
    assert pooled["label"] == "all readers" and pooled["n_answers"] == 3600


def test_paired_kappa_shows_both_numbers(paired):
    _, report = paired
    for group in report["studies"][0]["groups"]:
        kappa = group["kappa"]
        assert {"estimate", "from_accuracy", "statement", "synthetic_left", "balanced"} <= kappa.keys()
        accuracy = group["accuracy"]["correct"] / group["accuracy"]["n"]
        assert kappa["from_accuracy"] == round(2 * accuracy - 1, 4)
        # Near balance, the two agree closely.
        assert kappa["estimate"] == pytest.approx(kappa["from_accuracy"], abs=0.02)


def _row(reader, case, truth, answer, position, design="paired", confidence=None, question=None):
    return AnswerRow(
        study="s", design=design, reader=reader, specialty="radiologist", years_experience=3, case=case,
        position=position, question=question or ("which_is_synthetic" if design == "paired" else "real_or_synthetic"),
        truth=truth, answer=answer, correct=int(truth == answer), confidence=confidence,
        served_at="2025-01-06T09:00:00Z", answered_at="2025-01-06T09:00:04.5Z", reading_ms=4500,
    )


def test_balanced_paired_kappa_equals_two_accuracy_minus_one():
    truth = ["left", "right"] * 10
    # Accuracy 0.6 with 18 of 20 answers "left": the answers' balance does not matter.
    answers = ["right" if t == "right" and i < 4 else "left" for i, t in enumerate(truth)]
    rows = [_row("a", f"c{i}", t, a, i + 1) for i, (t, a) in enumerate(zip(truth, answers))]
    kappa = build_report(rows, bootstrap=0)["studies"][0]["groups"][0]["kappa"]
    assert kappa["balanced"] is True and kappa["synthetic_left"] == 10
    assert kappa["estimate"] == kappa["from_accuracy"] == 0.2


def test_paired_fleiss_uses_source_of_chosen_image(paired):
    rows, report = paired
    agreement = report["studies"][0]["agreement"]
    readers = sorted(READERS)
    chosen = {(r.reader, r.case): "synthetic" if r.correct else "real" for r in rows}
    cases = sorted({r.case for r in rows})
    counts = category_counts([[chosen[reader, case] for reader in readers] for case in cases], ("real", "synthetic"))
    assert agreement["estimate"] == round(inter_rater.fleiss_kappa(counts), 4)
    assert (agreement["n"], agreement["n_readers"], agreement["unit"]) == (300, 12, "case")
    assert agreement["ci"][0] <= agreement["estimate"] <= agreement["ci"][1]
    assert agreement["n_boot"] == 500


def test_mixed_study_detection_figures(mixed):
    rows, report = mixed
    study = report["studies"][0]
    assert study["ordinal_score"] and study["categories"] == ["real", "synthetic"]
    for group in study["groups"]:
        assert group["sensitivity"]["n"] + group["specificity"]["n"] == group["n_answers"]
    first = groups(report, "reader")[0]
    own = [r for r in rows if r.reader == first["label"]]
    expected = delong_auc([ordinal_score(r) for r in own], [int(r.truth == "synthetic") for r in own])
    assert first["auc"]["estimate"] == round(expected.auc, 4)
    assert first["auc"]["se"] == round(expected.se, 4)
    assert first["auc"]["n_synthetic"] + first["auc"]["n_real"] == 200
    (pooled,) = groups(report, "pooled")
    auc = pooled["auc"]
    assert auc["n"] == 200 and auc["n_readers"] == 12 and auc["note"] is None
    assert auc["ci"][0] < auc["estimate"] < auc["ci"][1] and auc["df"] > 1
    reader_mean = np.mean([g["auc"]["estimate"] for g in groups(report, "reader")])
    assert auc["estimate"] == pytest.approx(reader_mean, abs=1e-4)


def test_ordinal_score():
    assert ordinal_score(_row("a", "c", "real", "synthetic", 1, "mixed", 5)) == 10
    assert ordinal_score(_row("a", "c", "real", "synthetic", 1, "mixed", 1)) == 6
    assert ordinal_score(_row("a", "c", "real", "real", 1, "mixed", 1)) == 5
    assert ordinal_score(_row("a", "c", "real", "real", 1, "mixed", 5)) == 1


def _walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i))


def test_every_figure_has_method_unit_and_n(paired, mixed):
    for _, report in (paired, mixed):
        figures = [node for _, node in _walk(report) if "estimate" in node]
        assert len(figures) > 30
        for figure in figures:
            assert figure["method"] and figure["unit"] and isinstance(figure["n"], int)


def test_floats_are_rounded_consistently(paired, mixed):
    for _, report in (paired, mixed):
        for path, node in _walk(report):
            for key, value in node.items():
                values = value if isinstance(value, list) else [value]
                for number in (v for v in values if isinstance(v, float)):
                    if key in ("p", "p_lower", "p_upper", "binomial_p"):
                        assert number == float(f"{number:.4g}")
                    else:
                        assert number == round(number, 4), (path, key, number)


def test_report_is_deterministic_and_json_clean(paired):
    rows, report = paired
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    again = build_report(shuffled, bootstrap=500)
    assert again == report
    text = json.dumps(report, sort_keys=True, allow_nan=False)
    assert json.loads(text) == report
    assert json.dumps(again, sort_keys=True, allow_nan=False) == text


def test_csv_round_trip_gives_the_same_report(mixed):
    rows, report = mixed
    buffer = io.StringIO()
    write_csv(rows, buffer)
    buffer.seek(0)
    assert buffer.readline().strip() == ",".join(COLUMNS)
    buffer.seek(0)
    back = read_csv(buffer)
    assert back == rows
    assert build_report(back, bootstrap=500) == report


def test_several_studies_and_decimal_margin(paired, mixed):
    report = build_report(paired[0] + mixed[0], margin=Decimal("0.05"), bootstrap=100)
    assert [s["study"] for s in report["studies"]] == ["mixed study", "paired study"]
    assert report["settings"]["margin"] == 0.05
    json.dumps(report, allow_nan=False)
    flat = flat_rows(report)
    assert len(flat) == 2 * (1 + 2 + 12) and all(tuple(row) == FLAT_COLUMNS for row in flat)


def test_degenerate_study_gives_notes_not_errors():
    # One reader, every answer "real" for real images: kappa and Fleiss are undefined.
    rows = [_row("solo", f"c{i}", "real", "real", i + 1, "mixed", 3) for i in range(5)]
    study = build_report(rows, bootstrap=100)["studies"][0]
    pooled = study["groups"][0]
    assert pooled["accuracy"]["estimate"] == 1.0
    assert pooled["kappa"]["estimate"] is None and pooled["kappa"]["note"] == "not defined: every answer in one category"
    assert pooled["sensitivity"]["estimate"] is None and "no synthetic" in pooled["sensitivity"]["note"]
    assert pooled["auc"]["estimate"] is None and pooled["auc"]["note"]
    assert study["groups"][-1]["auc"]["note"]  # the reader's DeLong AUC needs both classes
    assert study["agreement"]["estimate"] is None and study["agreement"]["note"]
    json.dumps(study, allow_nan=False)


def test_mixed_without_confidence():
    rows = [_row(reader, f"c{i}", truth, answer, i + 1, "mixed")
            for reader in ("a", "b")
            for i, (truth, answer) in enumerate([("real", "real"), ("synthetic", "real"),
                                                 ("synthetic", "synthetic"), ("real", "synthetic")])]
    study = build_report(rows, bootstrap=50)["studies"][0]
    assert study["groups"][0]["auc"]["estimate"] is None
    assert study["groups"][-1]["auc"]["note"] == "not computed: no confidence ratings"
    assert study["agreement"]["estimate"] == 1.0


# --- the tidy format -------------------------------------------------------------------

def _csv(*lines: str) -> io.StringIO:
    return io.StringIO("\n".join(lines) + "\n")


HEADER = ",".join(COLUMNS)
GOOD = "s,paired,a,radiologist,3,c1,1,which_is_synthetic,left,left,1,,2025-01-06T09:00:00Z,2025-01-06T09:00:04Z,4000"


def test_read_csv_accepts_a_good_file():
    (row,) = read_csv(_csv("\ufeff" + HEADER, GOOD))
    assert row.case == "c1" and row.confidence is None and row.correct == 1
    assert row.to_record()["served_at"] == "2025-01-06T09:00:00Z"


@pytest.mark.parametrize("lines, message", [
    ((), "empty"),
    (("study,design",), "missing"),
    ((HEADER.replace("case,position", "position,case"), GOOD), "out of order"),
    ((HEADER, GOOD + ",extra"), "line 2: expected 15 fields, found 16"),
    ((HEADER, GOOD.replace("paired", "crossover")), "line 2: design 'crossover'"),
    ((HEADER, GOOD.replace(",1,,", ",0,,")), "line 2: correct is 0"),
    ((HEADER, GOOD.replace(",1,which", ",first,which")), "line 2: column 'position'"),
    ((HEADER, GOOD.replace("09:00:00Z", "09:00:00")), "line 2: served_at"),
    ((HEADER, GOOD.replace("09:00:04Z", "09:00:04+02:00")), "not in UTC"),
    ((HEADER, GOOD.replace("4000", "-1")), "reading_ms is negative"),
    ((HEADER, GOOD.replace(",,2025", ",4,2025")), "confidence must be empty"),
    ((HEADER, GOOD.replace("left,left", "real,real")), "truth 'real' is not one of left, right"),
    ((HEADER, GOOD, GOOD.replace(",1,which", ",2,which")), "line 3 (study 's', reader 'a', case 'c1'): a second answer"),
    ((HEADER, GOOD, GOOD.replace("c1", "c2")), "line 3 (study 's', reader 'a', case 'c2'): position 1"),
    ((HEADER, GOOD, GOOD.replace("c1,1", "c2,2").replace("radiologist", "other")), "more than one specialty"),
    ((HEADER, GOOD, GOOD.replace("c1,1", "c2,2").replace("s,paired", "s,mixed")), "line 3: question"),
    ((HEADER, GOOD, "s,mixed,b,other,,c2,1,real_or_synthetic,real,real,1,4,2025-01-06T09:00:00Z,2025-01-06T09:00:04Z,4000"),
     "line 3 (study 's', reader 'b', case 'c2'): study has both paired and mixed rows"),
])
def test_read_csv_names_the_problem(lines, message):
    with pytest.raises(TidyFormatError) as error:
        read_csv(_csv(*lines) if lines else io.StringIO(""))
    assert message in str(error.value)


def test_mixed_truth_must_agree_between_readers():
    first = _row("a", "c1", "real", "real", 1, "mixed", 2)
    second = dataclasses.replace(first, reader="b", truth="synthetic", correct=0)
    with pytest.raises(TidyFormatError, match="row 2 .*truth 'real' for another reader"):
        check_rows([first, second])


def test_answer_row_checks_types():
    good = _row("a", "c1", "left", "left", 1)
    with pytest.raises(ValueError, match="case must be text"):
        dataclasses.replace(good, case=1)
    with pytest.raises(ValueError, match="correct must be a whole number"):
        dataclasses.replace(good, correct=True)
    with pytest.raises(ValueError, match="answered_at is before served_at"):
        dataclasses.replace(good, answered_at="2025-01-06T08:59:59Z")


def test_further_questions_are_carried_but_not_analysed(mixed):
    rows, report = mixed
    grades = [dataclasses.replace(row, question="kl_grade", truth="2", answer=str(row.position % 5),
                                  correct=int(str(row.position % 5) == "2"), confidence=None)
              for row in rows[:30]]
    buffer = io.StringIO()
    write_csv(rows + grades, buffer)
    buffer.seek(0)
    back = read_csv(buffer)
    assert back == rows + grades
    study = build_report(back, bootstrap=500)["studies"][0]
    assert study["further_questions"] == [{"question": "kl_grade", "n_answers": 30}]
    assert study["groups"] == report["studies"][0]["groups"]
    with pytest.raises(ValueError, match="confidence must be empty for the further question"):
        dataclasses.replace(grades[0], confidence=3)
    with pytest.raises(ValueError, match="not asked in a mixed design"):
        dataclasses.replace(grades[0], question="which_is_synthetic")


def test_study_with_only_further_questions():
    row = _row("a", "c1", "2", "2", 1, "mixed", question="kl_grade")
    study = build_report([row], bootstrap=10)["studies"][0]
    assert study["n_answers"] == 0 and study["groups"][0]["accuracy"]["note"] == "not defined: no answers"
    json.dumps(study, allow_nan=False)

"""The report recovers planted effects, is deterministic, and survives the CSV round trip."""

import dataclasses
import io
import itertools
import json
import math
import random
from collections import defaultdict
from decimal import Decimal

import numpy as np
import pytest
from statsmodels.stats import inter_rater

from readerstudy.analysis.statistics.mrmc import delong_auc, obuchowski_rockette_proportion
from readerstudy.analysis.report import FLAT_COLUMNS, build_report, flat_rows
from readerstudy.analysis.report.format import for_display
from readerstudy.analysis.report.matrix import ordinal_score
from readerstudy.analysis.statistics.stats import category_counts, cohens_kappa, pairwise_kappa, quadratic_weighted_kappa
from readerstudy.analysis.tidy import (
    COLUMNS,
    AnswerRow,
    TidyFormatError,
    check_rows,
    first_readings,
    read_csv,
    simulate_rows,
    write_csv,
)

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
        assert kappa["from_accuracy"] == pytest.approx(2 * accuracy - 1, rel=1e-12, abs=1e-15)
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
    assert kappa["estimate"] == pytest.approx(0.2) and kappa["from_accuracy"] == pytest.approx(0.2)


def test_paired_fleiss_uses_source_of_chosen_image(paired):
    rows, report = paired
    agreement = report["studies"][0]["agreement"]
    readers = sorted(READERS)
    chosen = {(r.reader, r.case): "synthetic" if r.correct else "real" for r in rows}
    cases = sorted({r.case for r in rows})
    counts = category_counts([[chosen[reader, case] for reader in readers] for case in cases], ("real", "synthetic"))
    assert agreement["estimate"] == pytest.approx(inter_rater.fleiss_kappa(counts), rel=1e-12, abs=1e-15)
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
    assert first["auc"]["estimate"] == pytest.approx(expected.auc, rel=1e-12, abs=1e-15)
    assert first["auc"]["se"] == pytest.approx(expected.se, rel=1e-12, abs=1e-15)
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


def test_machine_output_keeps_full_precision_and_display_rounds(paired, mixed):
    """The dict (JSON, CSV) is unrounded; for_display (pages, print) rounds by ROUNDING."""
    for _, report in (paired, mixed):
        unrounded = 0
        shown = for_display(report)
        for (path, node), (_, display) in zip(_walk(report), _walk(shown)):
            for key, value in node.items():
                values = value if isinstance(value, list) else [value]
                rounded = display[key] if isinstance(display[key], list) else [display[key]]
                for number, printed in zip(values, rounded):
                    if not isinstance(number, float):
                        continue
                    unrounded += number != round(number, 4)
                    if key == "p" or key.startswith("p_") or key.endswith("_p"):
                        assert printed == float(f"{number:.4g}"), (path, key)
                    else:
                        assert printed == round(number, 4), (path, key)
        assert unrounded > 50


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
GOOD = "s,paired,a,radiologist,3,c1,1,which_is_synthetic,left,left,1,,2025-01-06T09:00:00Z,2025-01-06T09:00:04Z,4000,gan-a"
LEGACY_HEADER = ",".join(COLUMNS[:-1])  # files written before the source column
LEGACY_GOOD = GOOD.removesuffix(",gan-a")


def test_read_csv_accepts_a_good_file():
    (row,) = read_csv(_csv("\ufeff" + HEADER, GOOD))
    assert row.case == "c1" and row.confidence is None and row.correct == 1 and row.source == "gan-a"
    assert row.to_record()["served_at"] == "2025-01-06T09:00:00Z"


def test_read_csv_without_the_source_column():
    (row,) = read_csv(_csv(LEGACY_HEADER, LEGACY_GOOD))
    assert row.source == "" and row.case == "c1"
    buffer = io.StringIO()
    write_csv([row], buffer)  # writing always includes the column
    assert buffer.getvalue().splitlines() == [HEADER, LEGACY_GOOD + ","]
    with pytest.raises(TidyFormatError, match="line 2: expected 15 fields, found 16"):
        read_csv(_csv(LEGACY_HEADER, GOOD))


@pytest.mark.parametrize("lines, message", [
    ((), "empty"),
    (("study,design",), "missing"),
    ((HEADER.replace("case,position", "position,case"), GOOD), "out of order"),
    ((HEADER, GOOD + ",extra"), "line 2: expected 16 fields, found 17"),
    ((HEADER, GOOD.replace("paired", "crossover")), "line 2: design 'crossover'"),
    ((HEADER, GOOD.replace(",1,,", ",0,,")), "line 2: correct is 0"),
    ((HEADER, GOOD.replace(",1,which", ",first,which")), "line 2: column 'position'"),
    ((HEADER, GOOD.replace("09:00:00Z", "09:00:00")), "line 2: served_at"),
    ((HEADER, GOOD.replace("09:00:04Z", "09:00:04+02:00")), "not in UTC"),
    ((HEADER, GOOD.replace("4000", "-1")), "reading_ms is negative"),
    ((HEADER, GOOD.replace(",,2025", ",4,2025")), "confidence must be empty"),
    ((HEADER, GOOD.replace("left,left", "real,real")), "truth 'real' is not one of left, right"),
    ((HEADER, GOOD, GOOD), "line 3 (study 's', reader 'a', case 'c1'): a second answer to which_is_synthetic at the same"),
    ((HEADER, GOOD, GOOD.replace(",1,which", ",2,which"), GOOD.replace(",1,which", ",3,which")),
     "line 4 (study 's', reader 'a', case 'c1'): a third reading"),
    ((HEADER, GOOD, GOOD.replace("c1", "c2")), "line 3 (study 's', reader 'a', case 'c2'): position 1"),
    ((HEADER, GOOD, GOOD.replace("c1,1", "c2,2").replace("radiologist", "other")), "more than one specialty"),
    ((HEADER, GOOD, GOOD.replace("a,radiologist", "b,radiologist").replace("gan-a", "gan-b")),
     "line 3 (study 's', reader 'b', case 'c1'): case has source 'gan-b' here and 'gan-a' in another row"),
    ((HEADER.replace(",source", ""), GOOD), "line 2: expected 15 fields, found 16"),
    ((HEADER.replace("reading_ms,source", "source,reading_ms"), GOOD), "columns out of order"),
    ((HEADER, GOOD, GOOD.replace("c1,1", "c2,2").replace("s,paired", "s,mixed")), "line 3: question"),
    ((HEADER, GOOD, "s,mixed,b,other,,c2,1,real_or_synthetic,real,real,1,4,2025-01-06T09:00:00Z,2025-01-06T09:00:04Z,4000,"),
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


def test_further_questions_are_carried_and_leave_the_main_figures_alone(mixed):
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
    (grade,) = study["further_questions"]
    assert (grade["question"], grade["kind"], grade["n_answers"]) == ("kl_grade", "choice", 30)
    assert grade["categories"] == ["0", "1", "2", "3", "4"]
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


# --- repeated readings, agreement matrices, specialty, position, MRMC, further questions -------

FULL_READERS = {f"r{i:02d}": (specialty, TRUE_ACCURACY[specialty]) for i, specialty in
                enumerate(["radiologist", "orthopaedic_surgeon"] * 5)}


@pytest.fixture(scope="module")
def full():
    """Mixed study with repeats, a graded further question (synthetic graded worse) and fatigue."""
    rows = simulate_rows(study="full", design="mixed", readers=FULL_READERS, n_cases=240, seed=21, repeats=30,
                         consistency=0.8, drift=-1.2, grade="kl_grade", grade_noise=(0.3, 1.0))
    return rows, build_report(rows, bootstrap=400)


def test_every_figure_has_method_unit_and_n_in_the_full_report(full):
    _, report = full
    figures = [node for _, node in _walk(report) if "estimate" in node]
    assert len(figures) > 100
    for figure in figures:
        assert figure["method"] and figure["unit"] and isinstance(figure["n"], int), figure
    json.dumps(report, allow_nan=False)
    test_machine_output_keeps_full_precision_and_display_rounds((None, report), (None, report))


def test_repeats_are_accepted_and_main_figures_use_first_readings(full):
    rows, report = full
    first, pairs = first_readings(rows)
    main_pairs = [pair for pair in pairs if pair[0].is_main]
    assert len(main_pairs) == 30 * len(FULL_READERS)
    assert all(b.position > a.position and (a.reader, a.case) == (b.reader, b.case) for a, b in main_pairs)
    study = report["studies"][0]
    assert study["n_answers"] == 240 * len(FULL_READERS)
    assert study["n_repeat_readings"] == len(main_pairs)
    # Every main figure is the one from first readings alone (repeats changed nothing but intra_reader).
    alone = build_report(first, bootstrap=400)["studies"][0]
    for key in ("groups", "mrmc", "agreement", "pairwise", "specialty_model", "position"):
        assert study[key] == alone[key], key
    assert alone["intra_reader"]["n"] == 0 and alone["intra_reader"]["note"]


def test_intra_reader_kappa(full):
    rows, report = full
    intra = report["studies"][0]["intra_reader"]
    _, pairs = first_readings(rows)
    main_pairs = [pair for pair in pairs if pair[0].is_main]
    expected = cohens_kappa([a.answer for a, _ in main_pairs], [b.answer for _, b in main_pairs], ("real", "synthetic"))
    assert intra["pooled"]["estimate"] == pytest.approx(expected.estimate, rel=1e-12, abs=1e-15)
    assert intra["pooled"]["n"] == intra["n"] == len(main_pairs)
    assert [r["reader"] for r in intra["readers"]] == sorted(FULL_READERS)
    first = intra["readers"][0]
    own = [(a, b) for a, b in main_pairs if a.reader == first["reader"]]
    mine = cohens_kappa([a.answer for a, _ in own], [b.answer for _, b in own], ("real", "synthetic"))
    assert (first["n"], first["estimate"], first["se"]) == (30, pytest.approx(mine.estimate, rel=1e-12, abs=1e-15), pytest.approx(mine.se, rel=1e-12, abs=1e-15))
    assert first["agreement"] == pytest.approx(sum(a.answer == b.answer for a, b in own) / 30, rel=1e-12, abs=1e-15)
    # The simulation repeats the first answer 80% of the time, else answers afresh.
    assert 0.8 <= intra["pooled"]["agreement"] <= 0.95


def test_paired_intra_reader_compares_the_chosen_source():
    rows = simulate_rows(study="p", design="paired", readers={"a": ("radiologist", 0.7), "b": ("other", 0.6)},
                         n_cases=60, seed=2, repeats=20)
    intra = build_report(rows, bootstrap=0)["studies"][0]["intra_reader"]
    _, pairs = first_readings(rows)
    chosen = [(int(a.correct), int(b.correct)) for a, b in pairs if a.reader == "a"]
    expected = cohens_kappa(*(["synthetic" if c else "real" for c in side] for side in zip(*chosen)),
                            ("real", "synthetic"))
    assert intra["readers"][0]["estimate"] == pytest.approx(expected.estimate, rel=1e-12, abs=1e-15)
    assert "chose" in intra["category_basis"]


def test_pairwise_matrix_matches_statsmodels(mixed):
    rows, report = mixed
    pairwise = report["studies"][0]["pairwise"]
    ratings = defaultdict(dict)
    for row in rows:
        ratings[row.reader][row.case] = row.answer
    expected = pairwise_kappa(ratings, ("real", "synthetic"))
    assert len(pairwise["pairs"]) == len(expected) == 66
    for pair in pairwise["pairs"]:
        kappa = expected[pair["a"], pair["b"]]
        assert (pair["n"], pair["estimate"], pair["se"]) == (kappa.n, pytest.approx(kappa.estimate, rel=1e-12, abs=1e-15), pytest.approx(kappa.se, rel=1e-12, abs=1e-15))
    index = {reader: i for i, reader in enumerate(pairwise["readers"])}
    for row in pairwise["matrix"]:
        assert row["kappas"][index[row["reader"]]] is None
    first = pairwise["pairs"][0]
    assert pairwise["matrix"][index[first["b"]]]["kappas"][index[first["a"]]] == first["estimate"]
    summary = pairwise["summary"]
    assert summary["n"] == 66 and summary["min"] <= summary["estimate"] <= summary["max"]


def test_planted_specialty_difference_is_recovered_by_the_model(paired):
    _, report = paired
    model = report["studies"][0]["specialty_model"]
    assert model["reference"] == "radiologist" and model["n_readers"] == 12 and model["n"] == 3600
    (comparison,) = model["comparisons"]
    true_or = (0.55 / 0.45) / (0.75 / 0.25)
    assert comparison["specialty"] == "orthopaedic_surgeon"
    assert comparison["ci"][0] <= true_or <= comparison["ci"][1]
    assert comparison["ci"][1] < 1 and comparison["p"] < 1e-4
    assert comparison["df"] == 10  # 12 readers - 2 coefficients
    assert model["overall"]["p"] == pytest.approx(comparison["p"], rel=1e-3)  # one contrast: F = t^2


def test_specialty_model_needs_two_readers_per_specialty():
    rows = simulate_rows(readers={"a": ("radiologist", 0.7), "b": ("radiologist", 0.6), "c": ("other", 0.5)},
                         n_cases=40, seed=3)
    model = build_report(rows, bootstrap=0)["studies"][0]["specialty_model"]
    assert model["comparisons"] == [] and model["note"].startswith("not defined")
    assert model["excluded"] == [{"specialty": "other", "n_readers": 1, "reason": "fewer than two readers"}]


def test_planted_fatigue_is_recovered(full):
    rows, report = full
    position = report["studies"][0]["position"]
    assert len(position["bins"]) == 5 and position["bins"][0]["first"] == 1
    assert position["bins"][-1]["last"] == max(row.position for row in rows)
    assert sum(b["n"] for b in position["bins"]) == report["studies"][0]["n_answers"]
    trend = position["trend"]
    # drift -1.2 log odds over 270 positions: odds ratio per 100 readings about exp(-1.2 * 100 / 269) = 0.64
    assert trend["ci"][0] <= math.exp(-1.2 * 100 / 269) <= trend["ci"][1]
    assert trend["ci"][1] < 1 and trend["p"] < 0.01
    steady = build_report(simulate_rows(design="mixed", readers=FULL_READERS, n_cases=240, seed=21),
                          bootstrap=0)["studies"][0]["position"]["trend"]
    assert steady["ci"][0] <= 1 <= steady["ci"][1]


def test_mrmc_accuracy_matches_the_or_analysis(paired):
    rows, report = paired
    study = report["studies"][0]
    readers = sorted(READERS)
    cases = sorted({row.case for row in rows})
    correct = {(row.reader, row.case): row.correct for row in rows}
    matrix = np.array([[[correct[r, c] for c in cases] for r in readers]])
    result = obuchowski_rockette_proportion(matrix)
    single = result.random_readers_random_cases.treatments[0]
    pooled = study["groups"][0]["mrmc_accuracy"]
    assert (pooled["estimate"], pooled["se"], pooled["df"]) == (pytest.approx(single.estimate, rel=1e-12, abs=1e-15), pytest.approx(single.se, rel=1e-12, abs=1e-15),
                                                                pytest.approx(single.df, rel=1e-12, abs=1e-15))
    assert pooled["ci"] == [pytest.approx(single.ci[0], rel=1e-12, abs=1e-15), pytest.approx(single.ci[1], rel=1e-12, abs=1e-15)]
    assert pooled["n"] == 300 and pooled["n_readers"] == 12
    assert study["mrmc"]["accuracy"]["random_readers_random_cases"]["ci"] == pooled["ci"]
    fixed = result.fixed_readers_random_cases.treatments[0]
    assert study["mrmc"]["accuracy"]["fixed_readers_random_cases"]["se"] == pytest.approx(fixed.se, rel=1e-12, abs=1e-15)
    assert study["mrmc"]["auc"] is None and study["mrmc"]["comparison"] is None
    # The planted mean accuracy (0.65) lies in the interval; the wider OR interval is the honest one.
    assert pooled["ci"][0] <= 0.65 <= pooled["ci"][1]
    assert pooled["p"] < 0.05 and pooled["verdict"] in ("not equivalent", "inconclusive")
    specialty = {g["label"]: g["mrmc_accuracy"] for g in groups(report, "specialty")}
    assert specialty["orthopaedic_surgeon"]["ci"][0] <= 0.55 <= specialty["orthopaedic_surgeon"]["ci"][1]
    assert "mrmc_accuracy" not in groups(report, "reader")[0]


def test_mixed_mrmc_auc_is_tested_against_half(mixed):
    _, report = mixed
    study = report["studies"][0]
    pooled = study["groups"][0]["auc"]
    random = study["mrmc"]["auc"]["random_readers_random_cases"]
    assert (random["estimate"], random["ci"], random["df"]) == (pooled["estimate"], pooled["ci"], pooled["df"])
    assert pooled["p"] < 1e-6 and pooled["statistic"] > 0
    assert study["mrmc"]["auc"]["random_readers_fixed_cases"]["df"] == 11.0


def test_confusion_and_roc_points(mixed):
    rows, report = mixed
    for group in report["studies"][0]["groups"]:
        confusion = group["confusion"]
        assert sum(map(sum, confusion["counts"])) == confusion["n"] == group["n_answers"]
        assert confusion["counts"][1][1] == group["sensitivity"]["correct"]
    reader = groups(report, "reader")[0]
    xs, ys = np.array(reader["auc"]["roc"]).T
    assert (xs[0], ys[0], xs[-1], ys[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(ys, xs) == pytest.approx(reader["auc"]["estimate"], abs=2e-4)


def test_grading_kappas_by_image_source(full):
    rows, report = full
    (grade,) = report["studies"][0]["further_questions"]
    assert grade["kind"] == "choice" and grade["categories"] == ["0", "1", "2", "3", "4"]
    assert grade["n_repeat_readings"] == 30 * len(FULL_READERS)
    assert grade["source_basis"].startswith("image source of the case: the truth")  # not the generator column
    first, _ = first_readings(rows)
    source = {row.case: row.truth for row in first if row.is_main}
    graded = [row for row in first if row.question == "kl_grade"]
    for name in ("real", "synthetic"):
        mine = [row for row in graded if source[row.case] == name]
        expected = quadratic_weighted_kappa([r.answer for r in mine], [r.truth for r in mine], grade["categories"],
                                            grade["scores"])
        figure = grade["vs_reference"][name]
        assert figure["estimate"] == pytest.approx(expected.estimate, rel=1e-12, abs=1e-15) and figure["n"] == len(mine)
        assert figure["ci"][0] <= figure["estimate"] <= figure["ci"][1]
    # Synthetic images were graded with more noise: lower agreement, and the interval says so.
    for block in ("vs_reference", "between_readers"):
        difference = grade[block]["difference"]
        assert difference["estimate"] == pytest.approx(
            grade[block]["synthetic"]["estimate"] - grade[block]["real"]["estimate"], abs=1e-4)
        assert difference["ci"][1] < 0 and difference["n"] == 240
    # Between readers: pooled over every pair of readers grading a case.
    real_cases = sorted(case for case, truth in source.items() if truth == "real")
    by_case = defaultdict(list)
    for row in graded:
        by_case[row.case].append(row.answer)
    a, b = [], []
    for case in real_cases:
        for i, j in itertools.permutations(range(len(by_case[case])), 2):
            a.append(by_case[case][i])
            b.append(by_case[case][j])
    pooled = quadratic_weighted_kappa(a, b, grade["categories"], grade["scores"])
    assert grade["between_readers"]["real"]["estimate"] == pytest.approx(pooled.estimate, rel=1e-12, abs=1e-15)
    assert grade["between_readers"]["real"]["n"] == len(a) // 2
    assert grade["intra_reader"]["n"] == 30 * len(FULL_READERS) and grade["intra_reader"]["estimate"] > 0.5


def test_declared_choices_keep_unused_grades_and_text_is_counted():
    rows = simulate_rows(study="g", design="mixed", readers={"a": ("radiologist", 0.7), "b": ("other", 0.6)},
                         n_cases=40, seed=4, grade="kl_grade", grade_noise=(0.0, 0.0))
    rows = [dataclasses.replace(row, answer=str(min(int(row.answer), 3)), truth=str(min(int(row.truth), 3)),
                                correct=int(min(int(row.answer), 3) == min(int(row.truth), 3)))
            if row.question == "kl_grade" else row for row in rows]  # nobody uses grade 4
    notes = [dataclasses.replace(row, question="comment", truth="", answer=f"looks {row.case}", correct=None)
             for row in rows if row.question == "kl_grade"]
    report = build_report(rows + notes, bootstrap=50, questions={"kl_grade": ["0", "1", "2", "3", "4"]})
    comment, grade = report["studies"][0]["further_questions"]  # sorted by key
    assert (comment["question"], comment["kind"], comment["n_distinct"]) == ("comment", "text", 40)
    assert grade["categories"] == ["0", "1", "2", "3", "4"] and grade["category_basis"] == "the declared choices"
    assert grade["distribution"][-1]["answers"][-1] == 0
    assert grade["vs_reference"]["all"]["estimate"] == 1.0  # no noise: answers equal the reference


def test_further_question_in_a_paired_design_has_no_source_split():
    rows = simulate_rows(study="p", design="paired", readers={"a": ("radiologist", 0.7), "b": ("other", 0.6)},
                         n_cases=30, seed=5)
    grades = [dataclasses.replace(row, question="quality", truth="", answer=str(row.position % 3), correct=None)
              for row in rows]
    (quality,) = build_report(rows + grades, bootstrap=50)["studies"][0]["further_questions"]
    assert quality["vs_reference"]["real"] is None and quality["vs_reference"]["difference"] is None
    assert quality["vs_reference"]["all"]["estimate"] is None  # no reference labels
    assert quality["between_readers"]["all"]["estimate"] is not None
    assert "paired" in quality["note"]


def test_clustered_logit_degenerate_inputs():
    from readerstudy.analysis.statistics.regression import clustered_logit

    groups = np.repeat(np.arange(6), 20)
    x = (groups % 2).astype(float)
    assert clustered_logit([], [], ["x"], []).note == "not defined: no answers"
    assert clustered_logit(np.ones(120), x, ["x"], groups).note == "not defined: every answer is correct"
    assert "at least 3 readers" in clustered_logit(np.r_[np.ones(19), 0, np.zeros(20)], x[:40], ["x"],
                                                   groups[:40]).note
    separated = clustered_logit(x, x, ["x"], groups)  # group 1 always correct, group 0 never
    assert separated.coefficients == () and separated.note.startswith("not defined")
    assert clustered_logit(np.r_[np.ones(60), np.zeros(60)], np.zeros(120), ["x"], groups).note.startswith(
        "not defined: the covariates")


def test_specialties_are_named_in_words_on_the_page_and_kept_as_codes_for_machines():
    from readerstudy.analysis.templatetags.report_tags import group_label, specialty

    assert specialty("orthopaedic_surgeon") == "Orthopaedic surgeon" and specialty(None) == "" and specialty("x") == "x"
    assert group_label({"level": "specialty", "label": "radiology_resident"}) == "Radiology resident"
    assert group_label({"level": "reader", "label": "ana"}) == "ana"

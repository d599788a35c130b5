"""Obuchowski–Rockette against the published OR-DBM MRMC 2.51 output on the Van Dyke data.

Every figure is compared with the text of the output file to its printed
precision: |ours - printed| <= half a unit in the last printed digit.
"""

import csv
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from readerstudy.analysis.statistics.mrmc import (
    delong_auc,
    empirical_auc,
    jackknife_auc,
    obuchowski_rockette,
    obuchowski_rockette_proportion,
    or_analysis,
    ragged_obuchowski_rockette,
    ragged_obuchowski_rockette_proportion,
    roc_points,
)

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "vandyke"
NUMBER = re.compile(r"-?\d*\.\d+|-?\d+")


@pytest.fixture(scope="module")
def vandyke():
    data = REFERENCE / "dataset02.csv"
    output = REFERENCE / "or-dbm-mrmc-2.51-output.txt"
    if not (data.exists() and output.exists()):
        pytest.skip(f"Van Dyke reference data not found in {REFERENCE.resolve()} (kept outside the repository)")
    scores = np.full((2, 5, 114), np.nan)
    truth = np.zeros(114, dtype=int)
    with data.open(newline="") as handle:
        for row in csv.DictReader(handle):
            case = int(row["case"]) - 1
            scores[int(row["modality"]), int(row["reader"]), case] = float(row["rating"])
            truth[case] = int(row["truth"])
    return obuchowski_rockette(scores, truth), scores, truth, output.read_text()


def section(text: str, start: str, end: str | None = None) -> str:
    begin = text.index(start)
    return text[begin : text.index(end, begin) if end else None]


def rows(text: str, pattern: str) -> list[list[str]]:
    """The numbers, as printed, on every line matching pattern."""
    return [NUMBER.findall(line) for line in text.splitlines() if re.match(pattern, line)]


def check(value: float, printed: str) -> None:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    assert abs(value - float(printed)) <= 0.5 * 10**-decimals + 1e-12, f"{value} is not {printed}"


def check_interval(interval, printed: list[str], with_test: bool) -> None:
    """printed: estimate, se, [df,] [statistic, p,] low, high as on the output line."""
    expected = [interval.estimate, interval.se]
    if interval.df is not None:
        expected.append(interval.df)
    if with_test:
        expected += [interval.statistic, interval.p]
    expected += list(interval.ci)
    assert len(expected) == len(printed)
    for value, text in zip(expected, printed):
        check(value, text)


def test_reader_aucs_and_means(vandyke):
    result, scores, truth, text = vandyke
    block = section(text, "TREATMENT x READER AUC ESTIMATES", "TREATMENT AUC MEANS")
    table = rows(block, r"^\s+\d\s+0\.\d+\s+0\.\d+\s*$")
    assert len(table) == 5
    for j, (_, first, second) in enumerate(table):
        check(result.auc[0, j], first)
        check(result.auc[1, j], second)
    means = rows(section(text, "TREATMENT AUC MEANS", "MEAN DIFFERENCES"), r"^\s+\d\s+0\.\d+\s*$")
    assert len(means) == 2
    for i, (_, mean) in enumerate(means):
        check(result.treatment_auc[i], mean)
    assert (result.n_negative, result.n_positive) == (69, 45)


def test_mean_squares(vandyke):
    result, _, _, text = vandyke
    anova = section(text, "TREATMENT X READER ANOVA of AUCs", "READER ANOVAs")
    (t,) = rows(anova, r"^\s+T\s")
    (r,) = rows(anova, r"^\s+R\s")
    (tr,) = rows(anova, r"^\s+T\*R\s")
    check(result.ms_t, t[-1])
    check(result.ms_r, r[-1])
    check(result.ms_tr, tr[-1])
    (single,) = rows(section(text, "READER ANOVAs", "Variance component"), r"^\s+R\s+4\s")
    check(result.ms_r_treatment[0], single[-2])
    check(result.ms_r_treatment[1], single[-1])


def test_covariances_and_variance_components(vandyke):
    result, _, _, text = vandyke
    block = section(text, "Obuchowski-Rockette variance component", "Corresponding DBM")
    printed = {line.split()[0]: NUMBER.findall(line.split(maxsplit=1)[1]) for line in block.splitlines()
               if re.match(r"^\s*(Var\(|COV)", line)}
    check(result.var_r, printed["Var(R)"][0])
    check(result.var_tr, printed["Var(T*R)"][0])
    check(result.var_error, printed["Var(Error)"][0])
    for name, value in (("COV1", result.cov1), ("COV2", result.cov2), ("COV3", result.cov3)):
        check(value, printed[name][0])
        check(value / result.var_error, printed[name][1])  # the printed correlation


def test_random_readers_random_cases(vandyke):
    result, _, _, text = vandyke
    block = section(text, "Analysis 1 (OR Analysis)", "Analysis 2 (OR Analysis)")
    analysis = result.random_readers_random_cases
    (treatment,) = rows(block, r"^ Treatment\s+1\s")
    (error,) = rows(block, r"^ Error term\s+\d")
    check(analysis.test.statistic, treatment[2])  # F = 4.46
    check(analysis.test.p, treatment[3])  # p = 0.0517
    assert analysis.test.df1 == 1
    check(analysis.test.df2, error[0])  # Hillis ddf = 15.26
    check(result.ms_tr + 5 * max(result.cov2 - result.cov3, 0), error[1])
    (difference,) = rows(block, r"^\s+1 - 2\s")
    check_interval(analysis.differences[0], difference[2:], with_test=True)
    singles = rows(block, r"^\s+[12]\s+0\.\d+\s")
    for interval, printed, cov2 in zip(analysis.treatments, singles, result.cov2_treatment, strict=True):
        check_interval(interval, printed[1:-1], with_test=False)
        check(cov2, printed[-1])


def test_fixed_readers_random_cases(vandyke):
    result, _, _, text = vandyke
    block = section(text, "Analysis 2 (OR Analysis)", "Analysis 3 (OR Analysis)")
    analysis = result.fixed_readers_random_cases
    (x2,) = rows(block, r"^\s+\d+\.\d+\s+1\s+0\.\d+\s*$")
    check(analysis.test.statistic, x2[0])
    check(analysis.test.p, x2[2])
    assert analysis.test.df2 is None
    (difference,) = rows(block, r"^\s+1 - 2\s")
    check_interval(analysis.differences[0], difference[2:], with_test=True)
    singles = rows(block, r"^\s+[12]\s+0\.\d+\s+0\.\d+\s+\(")
    for interval, printed in zip(analysis.treatments, singles, strict=True):
        check_interval(interval, printed[1:], with_test=False)
    errors = rows(section(block, "Treatment  Var(Error)", "d) Single-reader"), r"^\s+[12]\s+0\.\d+\s+0\.\d+\s*$")
    assert len(errors) == 2
    for i, (_, var, cov2) in enumerate(errors):
        check(result.var_error_treatment[i], var)
        check(result.cov2_treatment[i], cov2)
    readers = rows(block, r"^\s+\d\s+1 - 2\s")
    assert len(readers) == 5
    for interval, printed in zip(analysis.readers, readers, strict=True):
        check_interval(interval, printed[3:], with_test=True)
    reader_errors = rows(section(block, "Reader  Var(Error)"), r"^\s+\d\s+0\.\d+\s+0\.\d+\s*$")
    assert len(reader_errors) == 5
    for j, (_, var, cov1) in enumerate(reader_errors):
        check(result.var_error_reader[j], var)
        check(result.cov1_reader[j], cov1)


def test_random_readers_fixed_cases(vandyke):
    result, _, _, text = vandyke
    block = section(text, "Analysis 3 (OR Analysis)", "REFERENCES")
    analysis = result.random_readers_fixed_cases
    (treatment,) = rows(block, r"^ Treatment\s+1\s")
    check(analysis.test.statistic, treatment[2])  # F = 8.70
    check(analysis.test.p, treatment[3])
    assert (analysis.test.df1, analysis.test.df2) == (1, 4)
    (difference,) = rows(block, r"^\s+1 - 2\s")
    check_interval(analysis.differences[0], difference[2:], with_test=True)
    singles = rows(block, r"^\s+[12]\s+0\.\d+\s+0\.\d+\s+0\.\d+\s+4\s")
    for interval, printed, ms in zip(analysis.treatments, singles, result.ms_r_treatment, strict=True):
        check(ms, printed[2])
        check_interval(interval, [printed[1], *printed[3:]], with_test=False)


def test_single_treatment_analysis_matches_full(vandyke):
    # Single-treatment intervals use only that treatment's data.
    result, scores, truth, _ = vandyke
    alone = obuchowski_rockette(scores[1:], truth)
    assert alone.random_readers_random_cases.test is None
    assert alone.cov1 is None and alone.ms_t is None
    for name in ("random_readers_random_cases", "fixed_readers_random_cases", "random_readers_fixed_cases"):
        mine = getattr(alone, name).treatments[0]
        full = getattr(result, name).treatments[1]
        assert mine.estimate == pytest.approx(full.estimate, rel=1e-12)
        assert mine.se == pytest.approx(full.se, rel=1e-12)
        assert mine.ci == pytest.approx(full.ci, rel=1e-12)


def _naive_auc(scores, truth):
    pos, neg = scores[truth == 1], scores[truth == 0]
    return ((pos[:, None] > neg).sum() + 0.5 * (pos[:, None] == neg).sum()) / (pos.size * neg.size)


def test_auc_jackknife_and_delong_against_direct_formulas():
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 40)
    scores = rng.integers(1, 6, 40) + truth  # ties on purpose
    assert empirical_auc(scores, truth) == pytest.approx(_naive_auc(scores, truth), rel=1e-12)
    pseudo = jackknife_auc(scores, truth)
    keep = ~np.eye(40, dtype=bool)
    assert pseudo == pytest.approx([_naive_auc(scores[k], truth[k]) for k in keep], rel=1e-12)
    # DeLong: structural components from the pairwise kernel.
    pos, neg = scores[truth == 1], scores[truth == 0]
    kernel = (pos[:, None] > neg) + 0.5 * (pos[:, None] == neg)
    se = np.sqrt(kernel.mean(1).var(ddof=1) / pos.size + kernel.mean(0).var(ddof=1) / neg.size)
    estimate = delong_auc(scores, truth)
    assert estimate.se == pytest.approx(se, rel=1e-12)
    assert (estimate.n_positive, estimate.n_negative) == (pos.size, neg.size)


def test_auc_degenerate_inputs():
    assert delong_auc([1, 2], [1, 1]).auc is None
    assert delong_auc([1, 2], [1, 1]).note
    one_negative = delong_auc([3, 2, 1], [1, 1, 0])
    assert one_negative.auc == 1.0 and one_negative.se is None and one_negative.note
    with pytest.raises(ValueError):
        obuchowski_rockette(np.ones((1, 1, 4)), [0, 0, 1, 1])
    with pytest.raises(ValueError):
        empirical_auc([1, 2], [0, 2])


def test_three_treatments(vandyke):
    # A third, noisier modality: every pair gets a difference; the F test has t - 1 = 2 df.
    result, scores, truth, _ = vandyke
    noisy = scores[1] + np.random.default_rng(0).normal(0, 1.5, scores[1].shape)
    three = obuchowski_rockette(np.concatenate([scores, noisy[None]]), truth, treatments=["cine", "spin-echo", "noisy"])
    assert [d.label for d in three.random_readers_random_cases.differences] == \
        ["cine - spin-echo", "cine - noisy", "spin-echo - noisy"]
    assert three.random_readers_random_cases.test.df1 == 2
    assert len(three.fixed_readers_random_cases.readers) == 5 * 3
    # Treatment-specific figures do not depend on the other treatments.
    alone, together = three.random_readers_random_cases.treatments[0], result.random_readers_random_cases.treatments[0]
    assert (alone.label, dataclasses.replace(alone, label="1")) == ("cine", together)


# --- proportion correct and ROC points -------------------------------------------------------


def test_proportion_correct_uses_leave_one_case_out_values():
    rng = np.random.default_rng(8)
    correct = (rng.random((2, 4, 30)) < [[[0.7]], [[0.6]]]).astype(int)
    result = obuchowski_rockette_proportion(correct, treatments=["a", "b"])
    assert result.auc == pytest.approx(correct.mean(axis=2))
    assert result.n_positive is None and result.n_negative is None
    # The generic analysis with brute-force leave-one-case-out proportions gives the same.
    keep = ~np.eye(30, dtype=bool)
    pseudo = np.array([[[row[k].mean() for k in keep] for row in treatment] for treatment in correct])
    brute = or_analysis(correct.mean(axis=2), pseudo, treatments=["a", "b"])
    for name in ("random_readers_random_cases", "fixed_readers_random_cases", "random_readers_fixed_cases"):
        mine, theirs = getattr(result, name), getattr(brute, name)
        assert mine.test.statistic == pytest.approx(theirs.test.statistic, rel=1e-10)
        for a, b in zip(mine.treatments + mine.differences, theirs.treatments + theirs.differences, strict=True):
            assert (a.estimate, a.se) == pytest.approx((b.estimate, b.se), rel=1e-10)
    # The jackknife variance of a proportion is s^2 / c, per reader.
    assert result.var_error_treatment[0] == pytest.approx(np.mean(correct[0].var(axis=1, ddof=1) / 30), rel=1e-10)


def test_single_source_proportion_interval():
    rng = np.random.default_rng(9)
    skill = rng.normal(0, 0.3, (1, 8, 1))
    correct = (rng.random((1, 8, 200)) < 1 / (1 + np.exp(-(0.4 + skill)))).astype(int)
    single = obuchowski_rockette_proportion(correct).random_readers_random_cases.treatments[0]
    r = 8
    theta = correct[0].mean(axis=1)
    d = correct[0] - theta[:, None]
    cov = d @ d.T / (200 * 199)
    cov2 = cov[~np.eye(r, dtype=bool)].mean()
    ms_r = theta.var(ddof=1)
    assert single.se == pytest.approx(np.sqrt((ms_r + r * max(cov2, 0)) / r), rel=1e-10)
    assert single.df == pytest.approx((ms_r + r * max(cov2, 0)) ** 2 / (ms_r**2 / (r - 1)), rel=1e-10)
    assert single.ci[0] < theta.mean() < single.ci[1]


def test_proportion_input_checks():
    with pytest.raises(ValueError, match="0 or 1"):
        obuchowski_rockette_proportion(np.full((1, 2, 3), 0.5))
    with pytest.raises(ValueError, match="two readers"):
        obuchowski_rockette_proportion(np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match="two cases"):
        obuchowski_rockette_proportion(np.ones((1, 2, 1)))


def test_roc_points_trace_the_empirical_auc():
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 2, 80)
    scores = rng.integers(1, 11, 80) + 2 * truth
    points = roc_points(scores, truth)
    assert points[0] == (0.0, 0.0) and points[-1] == (1.0, 1.0)
    xs, ys = np.array(points).T
    assert np.all(np.diff(xs) >= 0) and np.all(np.diff(ys) >= 0)
    assert np.trapezoid(ys, xs) == pytest.approx(empirical_auc(scores, truth), rel=1e-12)
    assert roc_points([1, 2], [1, 1]) == []


# --- cases nested in treatments (synthetic sources) ---------------------------------------------


def _same_result(a, b) -> None:
    """Every field of two ORResults identical (arrays element for element)."""
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y), field.name
        else:
            assert x == y, field.name


def test_ragged_analysis_of_a_crossed_design_is_the_crossed_analysis(vandyke):
    """Every case in every treatment: the nested-case jackknife reproduces OR-DBM MRMC exactly."""
    result, scores, truth, text = vandyke
    ragged = ragged_obuchowski_rockette(scores, truth)
    _same_result(ragged, result)
    # and so the published figures: F = 4.46 on 1 and 15.26 df, p = 0.0517
    test = ragged.random_readers_random_cases.test
    assert (round(test.statistic, 2), round(test.df2, 2), round(test.p, 4)) == (4.46, 15.26, 0.0517)
    test_random_readers_random_cases((ragged, scores, truth, text))
    correct = (scores >= 3).astype(float)  # any 0/1 data: the proportion path too
    _same_result(ragged_obuchowski_rockette_proportion(correct), obuchowski_rockette_proportion(correct))


def test_ragged_jackknife_against_brute_force(vandyke):
    """Van Dyke cut into overlapping case sets: leave-one-out values over the union by brute force."""
    _, scores, truth, _ = vandyke
    member = np.zeros((2, 114), dtype=bool)
    member[0, :80] = True
    member[1, 40:] = True  # cases 40-79 in both, the others in one treatment only
    ragged = np.where(member[:, None, :], scores, np.nan)
    result = ragged_obuchowski_rockette(ragged, truth, treatments=["a", "b"])
    fom = np.array([[_naive_auc(scores[t, r, member[t]], truth[member[t]]) for r in range(5)] for t in range(2)])
    pseudo = np.empty((2, 5, 114))
    for t in range(2):
        for r in range(5):
            for k in range(114):
                keep = member[t].copy()
                keep[k] = False
                pseudo[t, r, k] = _naive_auc(scores[t, r, keep], truth[keep])
    brute = or_analysis(fom, pseudo, treatments=["a", "b"], n_positive=45, n_negative=69)
    assert result.auc == pytest.approx(fom, rel=1e-12)
    for name in ("var_error", "cov1", "cov2", "cov3", "ms_t", "ms_tr"):
        assert getattr(result, name) == pytest.approx(getattr(brute, name), rel=1e-9), name
    mine, theirs = result.random_readers_random_cases, brute.random_readers_random_cases
    assert mine.test.statistic == pytest.approx(theirs.test.statistic, rel=1e-9)
    assert mine.differences[0].ci == pytest.approx(theirs.differences[0].ci, rel=1e-9)


def test_nested_proportions_have_no_covariance_between_treatments():
    rng = np.random.default_rng(12)
    correct = np.full((2, 4, 50), np.nan)
    correct[0, :, :30] = rng.random((4, 30)) < 0.7
    correct[1, :, 30:] = rng.random((4, 20)) < 0.6
    result = ragged_obuchowski_rockette_proportion(correct, treatments=["a", "b"])
    assert result.cov1 == pytest.approx(0, abs=1e-15) and result.cov3 == pytest.approx(0, abs=1e-15)
    assert result.auc[0] == pytest.approx(np.nanmean(correct[0], axis=1))
    # Within a treatment: the union jackknife is the own-case one scaled by (|U| - 1)/|U| over (|S| - 1)/|S|.
    alone = obuchowski_rockette_proportion(correct[:1, :, :30])
    assert result.var_error_treatment[0] == pytest.approx(
        alone.var_error_treatment[0] * (49 / 50) / (29 / 30), rel=1e-12)


def test_ragged_input_checks():
    with pytest.raises(ValueError, match="same cases"):
        ragged_obuchowski_rockette_proportion(np.array([[[1, np.nan], [1, 0]]] * 2))
    with pytest.raises(ValueError, match="at least one treatment"):
        ragged_obuchowski_rockette_proportion(np.full((2, 2, 3), np.nan))
    with pytest.raises(ValueError, match="two cases in every treatment"):
        ragged_obuchowski_rockette_proportion(np.array([[[1, 0, np.nan]] * 2, [[np.nan, np.nan, 1]] * 2]))

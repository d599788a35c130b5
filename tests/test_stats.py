"""Proportions and agreement agree with statsmodels/scipy; degenerate input gives notes, not NaN."""

import math
import time

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats import inter_rater
from statsmodels.stats.proportion import binom_tost, proportion_confint

from readerstudy.analysis.statistics.stats import (
    ONE_CATEGORY,
    binomial_test,
    category_counts,
    cohens_kappa,
    contingency_table,
    fleiss_kappa,
    kappa_arrays,
    ordered_categories,
    pairwise_kappa,
    proportion,
    quadratic_weighted_kappa,
    sensitivity_specificity,
    tost_equivalence,
)


@pytest.mark.parametrize("k, n", [(0, 10), (7, 10), (10, 10), (62, 100), (1, 3)])
def test_proportion_matches_statsmodels(k, n):
    result = proportion(k, n)
    assert result.estimate == k / n
    assert result.ci_clopper_pearson == pytest.approx(proportion_confint(k, n, method="beta"), abs=1e-10)
    assert result.ci_wilson == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-10)
    assert result.note is None


def test_binomial_test_matches_scipy():
    assert binomial_test(62, 100).p == pytest.approx(sps.binomtest(62, 100, 0.5).pvalue, rel=1e-12)
    assert binomial_test(50, 100).p == 1.0


def test_empty_proportion_and_test_have_notes():
    result = proportion(0, 0)
    assert result.estimate is None and result.ci_clopper_pearson is None and result.ci_wilson is None
    assert result.note == "not defined: no answers"
    assert binomial_test(0, 0).p is None and binomial_test(0, 0).note


def test_counts_are_checked():
    with pytest.raises(ValueError):
        proportion(5, 4)


@pytest.mark.parametrize("k, n", [(500, 1000), (60, 100), (530, 1000), (900, 1000), (3, 10)])
def test_tost_matches_statsmodels(k, n):
    result = tost_equivalence(k, n, margin=0.10)
    p, lower, upper = binom_tost(k, n, 0.4, 0.6)
    assert result.p == pytest.approx(p, rel=1e-9)
    assert result.p_lower == pytest.approx(lower, rel=1e-9)
    assert result.p_upper == pytest.approx(upper, rel=1e-9)


def test_tost_verdicts():
    assert tost_equivalence(500, 1000).verdict == "equivalent"
    assert tost_equivalence(900, 1000).verdict == "not equivalent"
    assert tost_equivalence(100, 1000).verdict == "not equivalent"
    assert tost_equivalence(6, 10).verdict == "inconclusive"
    # The TOST decision is the 90% Clopper-Pearson interval lying inside the margin.
    equivalent = tost_equivalence(500, 1000)
    assert 0.4 < equivalent.ci[0] and equivalent.ci[1] < 0.6
    wider = tost_equivalence(560, 1000, margin=0.05)
    assert wider.verdict == "inconclusive" and wider.margin == 0.05
    empty = tost_equivalence(0, 0)
    assert empty.verdict == "not defined" and empty.p is None and empty.note
    with pytest.raises(ValueError):
        tost_equivalence(5, 10, margin=0.6)


def test_sensitivity_specificity():
    truth = ["synthetic"] * 4 + ["real"] * 6
    answers = ["synthetic", "synthetic", "synthetic", "real", "real", "real", "real", "real", "synthetic", "synthetic"]
    result = sensitivity_specificity(truth, answers)
    assert (result.sensitivity.successes, result.sensitivity.n) == (3, 4)
    assert (result.specificity.successes, result.specificity.n) == (4, 6)
    only_real = sensitivity_specificity(["real", "real"], ["real", "synthetic"])
    assert only_real.sensitivity.estimate is None
    assert only_real.sensitivity.note == "not defined: no synthetic cases"
    assert only_real.specificity.estimate == 0.5


def test_cohens_kappa_matches_statsmodels():
    rng = np.random.default_rng(1)
    truth = rng.choice(["left", "right"], 200).tolist()
    answers = [t if rng.random() < 0.7 else ("right" if t == "left" else "left") for t in truth]
    result = cohens_kappa(truth, answers, ("left", "right"))
    expected = inter_rater.cohens_kappa(contingency_table(truth, answers, ("left", "right")))
    assert result.estimate == pytest.approx(expected.kappa, rel=1e-12)
    assert result.se == pytest.approx(expected.std_kappa, rel=1e-12)
    assert result.ci == pytest.approx((expected.kappa_low, expected.kappa_upp), rel=1e-12)
    assert result.n == 200


def test_unused_category_still_counts():
    # Nobody answered "maybe"; the table keeps its row and column.
    table = contingency_table(["a", "b", "a"], ["a", "b", "b"], ("a", "b", "maybe"))
    assert table.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    # Truth entirely one category, answers split: kappa is defined (0 here).
    result = cohens_kappa(["synthetic"] * 4, ["synthetic", "real", "synthetic", "real"], ("real", "synthetic"))
    assert result.estimate == pytest.approx(0.0)
    # Its SE is 0: no zero-width interval is printed, and the note says why (issue 13).
    assert result.se == 0 and result.ci is None and "no interval" in result.note


def test_kappa_degenerate_inputs():
    empty = cohens_kappa([], [], ("real", "synthetic"))
    assert empty.estimate is None and empty.se is None and empty.note == "not defined: no answers"
    one = cohens_kappa(["real"] * 5, ["real"] * 5, ("real", "synthetic"))
    assert one.estimate is None and one.ci is None and one.note == ONE_CATEGORY
    with pytest.raises(ValueError):
        cohens_kappa(["real"], ["fake"], ("real", "synthetic"))


def test_perfect_agreement():
    result = cohens_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"], ("a", "b"))
    assert result.estimate == 1.0
    assert result.se == 0 and result.ci is None and "no interval" in result.note  # not a zero-width interval


def test_quadratic_weighted_kappa_by_hand():
    rng = np.random.default_rng(2)
    categories = ("1", "2", "3", "4", "5")
    a = rng.integers(1, 6, 300)
    b = np.clip(a + rng.integers(-1, 2, 300), 1, 5)
    result = quadratic_weighted_kappa(a.astype(str).tolist(), b.astype(str).tolist(), categories)
    observed = np.zeros((5, 5))
    np.add.at(observed, (a - 1, b - 1), 1)
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    w = (np.arange(5)[:, None] - np.arange(5)) ** 2
    assert result.estimate == pytest.approx(1 - (w * observed).sum() / (w * expected).sum(), rel=1e-12)
    assert result.se > 0 and result.ci[0] < result.estimate < result.ci[1]
    assert quadratic_weighted_kappa(["3"] * 4, ["3"] * 4, categories).note == ONE_CATEGORY


def test_pairwise_kappa_uses_shared_items():
    ratings = {
        "b": {"1": "real", "2": "synthetic", "3": "real", "4": "synthetic"},
        "a": {"1": "real", "2": "synthetic", "3": "synthetic"},
        "c": {"1": "synthetic", "2": "real", "3": "real", "4": "synthetic"},
    }
    result = pairwise_kappa(ratings, ("real", "synthetic"))
    assert set(result) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert result["a", "b"].n == 3
    assert result["a", "b"].estimate == pytest.approx(
        cohens_kappa(["real", "synthetic", "synthetic"], ["real", "synthetic", "real"], ("real", "synthetic")).estimate
    )
    assert result["b", "c"].n == 4


def _ratings(n_items, n_raters, seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_items)
    agree = rng.random((n_items, n_raters)) < 0.75
    labels = np.where(agree, truth[:, None], 1 - truth[:, None])
    return np.array(["real", "synthetic"])[labels].tolist()


def test_fleiss_matches_statsmodels_and_bootstrap_is_exact():
    counts = category_counts(_ratings(60, 4, seed=3), ("real", "synthetic"))
    result = fleiss_kappa(counts, n_boot=50, seed=7)
    assert result.estimate == pytest.approx(inter_rater.fleiss_kappa(counts), rel=1e-12)
    # The vectorised bootstrap equals statsmodels on each resampled table.
    draws = np.random.default_rng(7).integers(0, 60, size=(50, 60))
    naive = np.array([inter_rater.fleiss_kappa(counts[d]) for d in draws])
    assert result.ci == pytest.approx(tuple(np.percentile(naive, [2.5, 97.5])), rel=1e-12)
    assert result.ci[0] < result.estimate < result.ci[1]
    assert (result.n_items, result.n_raters, result.n_boot_undefined) == (60, 4, 0)


def test_fleiss_is_seeded_and_fast():
    counts = category_counts(_ratings(1000, 40, seed=4), ("real", "synthetic"))
    start = time.perf_counter()
    first = fleiss_kappa(counts, n_boot=2000, seed=0)
    elapsed = time.perf_counter() - start
    assert first == fleiss_kappa(counts, n_boot=2000, seed=0)
    assert first.ci != fleiss_kappa(counts, n_boot=2000, seed=1).ci
    assert elapsed < 1.5


def test_fleiss_degenerate_inputs():
    assert fleiss_kappa(np.zeros((0, 2))).note == "not defined: no cases"
    one_rater = fleiss_kappa(category_counts([["real"], ["synthetic"]], ("real", "synthetic")))
    assert one_rater.estimate is None and one_rater.note == "not defined: needs at least two readers"
    same = fleiss_kappa(category_counts([["real", "real"]] * 5, ("real", "synthetic")))
    assert same.estimate is None and same.ci is None and same.note == ONE_CATEGORY
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 0]])


def test_fleiss_counts_resamples_without_kappa():
    # With one mixed item out of three, some resamples hold only the
    # unanimous "real" items: their kappa is undefined and is set aside.
    counts = category_counts([["real", "real"], ["real", "real"], ["real", "synthetic"]], ("real", "synthetic"))
    result = fleiss_kappa(counts, n_boot=200, seed=0)
    assert 0 < result.n_boot_undefined < 200
    assert result.ci is not None and not any(math.isnan(x) for x in result.ci)
    assert f"{result.n_boot_undefined} of 200" in result.note


# --- vectorised kappas, weights from scores, category order -------------------------------------


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("weighted", [False, True])
def test_kappa_arrays_match_statsmodels_table_by_table(k, weighted):
    rng = np.random.default_rng(10 + k)
    tables = rng.integers(0, 12, (40, k, k)).astype(float)
    tables[0] = 0
    tables[0, 0, k - 1] = 6  # rows all first category, columns all last: defined, kappa 0
    tables[1, :, 1:] = 0
    tables[1, 1:, :] = 0  # every rating in the first category: not defined
    tables[2, 1, :] = 0  # a category one rating never used
    scores = np.sort(rng.choice(30, k, replace=False)).astype(float) if weighted else None
    kappa, var = kappa_arrays(tables, weighted=weighted, scores=scores)
    assert kappa.shape == var.shape == (40,)
    assert math.isnan(kappa[1]) and math.isnan(var[1])
    for i in (0, *range(2, 40)):
        with np.errstate(all="ignore"):
            expected = inter_rater.cohens_kappa(tables[i], weights=scores, wt="quadratic") if weighted \
                else inter_rater.cohens_kappa(tables[i])
        assert kappa[i] == pytest.approx(expected.kappa, rel=1e-12, abs=1e-14)
        if math.isfinite(expected.var_kappa) and expected.var_kappa >= 0:
            assert var[i] == pytest.approx(expected.var_kappa, rel=1e-10, abs=1e-15)
        else:
            assert math.isnan(var[i])


def test_weighted_kappa_uses_the_scores_for_spacing():
    # Grades 0, 1, 3, 4 with grade 2 never used: the spacing follows the numbers.
    a = ["0", "1", "3", "4", "1", "3", "0", "4"]
    b = ["1", "1", "4", "3", "0", "3", "0", "4"]
    categories, scores = ordered_categories(a + b)
    assert categories == ["0", "1", "3", "4"] and scores == [0.0, 1.0, 3.0, 4.0]
    result = quadratic_weighted_kappa(a, b, categories, scores)
    expected = inter_rater.cohens_kappa(contingency_table(a, b, categories), weights=scores, wt="quadratic")
    assert result.estimate == pytest.approx(expected.kappa, rel=1e-12)
    equal = quadratic_weighted_kappa(a, b, categories)  # equal spacing would treat 1 -> 3 as one step
    assert equal.estimate != pytest.approx(result.estimate)
    # Passing the full list of grades 0-4 gives the same kappa as the scores.
    full = quadratic_weighted_kappa(a, b, ["0", "1", "2", "3", "4"])
    assert full.estimate == pytest.approx(result.estimate, rel=1e-12)
    with pytest.raises(ValueError, match="increasing"):
        quadratic_weighted_kappa(a, b, categories, [0, 1, 1, 2])


def test_kappa_interval_stays_within_minus_one_and_one():
    result = cohens_kappa(["a"] * 9 + ["b"], ["a"] * 9 + ["b"], ("a", "b"))
    assert result.estimate == 1.0 and result.ci is None  # SE 0: no interval rather than [1, 1]
    near = cohens_kappa(["a", "a", "b", "b", "a"], ["a", "a", "b", "b", "b"], ("a", "b"))
    assert -1.0 <= near.ci[0] and near.ci[1] <= 1.0


def test_ordered_categories():
    assert ordered_categories(["10", "9", "2", ""]) == (["2", "9", "10"], [2.0, 9.0, 10.0])
    assert ordered_categories(["grade 10", "grade 9", "none"]) == (["grade 9", "grade 10", "none"], None)
    assert ordered_categories(["1", "1.0"])[1] is None  # two labels for one number: no numeric weights
    assert ordered_categories([]) == ([], None)

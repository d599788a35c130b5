"""The report's agreement sections: between readers and within a reader.

agreement: Fleiss' kappa over the cases every reader read; pairwise: Cohen's
kappa for every pair of readers; intra_reader: Cohen's kappa between a
reader's first and repeat reading of a case. All on the main question's
two categories (real, synthetic; see CATEGORY_BASIS).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .format import _interval, _kappa_figure, _r
from .matrix import _Matrix
from ..statistics.stats import cohens_kappa, fleiss_kappa, kappa_arrays, kappa_result
from ..tidy import AnswerRow

FLEISS_METHOD = (
    "Fleiss' kappa (statsmodels) between readers over the cases every reader read; "
    "case-bootstrap percentile 95% interval"
)
PAIRWISE_METHOD = "Cohen's kappa between two readers over the cases both read; asymptotic SE; Wald 95% interval"
PAIRWISE_SUMMARY_METHOD = "mean, minimum and maximum of the defined pairwise Cohen's kappas"
INTRA_METHOD = (
    "Cohen's kappa between a reader's first and repeat reading of the same case; asymptotic SE; "
    "Wald 95% interval; agreement = share of identical answers"
)
INTRA_POOLED_CAVEAT = "; pairs pooled over readers"
CATEGORY_BASIS = {
    "paired": "source of the image the reader chose: synthetic when correct, else real "
    "(left and right differ between readers, so sides are not compared)",
    "mixed": "the answer",
}


def _agreement(matrix: _Matrix, design: str, bootstrap: int, seed: int) -> dict:
    complete = (matrix.category >= 0).all(axis=0) if matrix.readers else np.zeros(len(matrix.cases), dtype=bool)
    chosen = matrix.category[:, complete]
    categories = ("real", "synthetic")
    counts = np.stack([(chosen == 0).sum(axis=0), (chosen == 1).sum(axis=0)], axis=1) if chosen.size else \
        np.zeros((0, 2), dtype=int)
    kappa = fleiss_kappa(counts, n_boot=bootstrap, seed=seed)
    return {
        "method": FLEISS_METHOD,
        "unit": "case",
        "n": int(complete.sum()),
        "n_readers": len(matrix.readers),
        "categories": list(categories),
        "category_basis": CATEGORY_BASIS[design],
        "estimate": _r(kappa.estimate),
        "ci": _interval(kappa.ci),
        "n_boot": kappa.n_boot,
        "n_boot_undefined": kappa.n_boot_undefined,
        "seed": seed,
        "note": kappa.note,
    }


def _pairwise(matrix: _Matrix, design: str) -> dict:
    readers = matrix.readers
    r = len(readers)
    onehot = np.stack([matrix.category == 0, matrix.category == 1], axis=1).astype(float)  # (R, 2, C)
    flat = onehot.reshape(2 * r, len(matrix.cases))
    # tables[a, b, k, l]: cases that reader a put in category k and reader b in l (one matrix product)
    tables = (flat @ flat.T).reshape(r, 2, r, 2).transpose(0, 2, 1, 3)
    kappa, var = kappa_arrays(tables)
    pairs = []
    grid: list[list[float | None]] = [[None] * r for _ in range(r)]
    for a in range(r):
        for b in range(a + 1, r):
            result = kappa_result(int(tables[a, b].sum()), kappa[a, b], var[a, b])
            pairs.append({"a": readers[a], "b": readers[b], **_kappa_figure(result, PAIRWISE_METHOD, "case")})
            grid[a][b] = grid[b][a] = _r(result.estimate)
    defined = [pair["estimate"] for pair in pairs if pair["estimate"] is not None]
    summary = {
        "method": PAIRWISE_SUMMARY_METHOD, "unit": "reader pair", "n": len(defined),
        "estimate": _r(float(np.mean(defined))) if defined else None,
        "min": min(defined) if defined else None, "max": max(defined) if defined else None,
        "note": None if defined else ("not defined: needs at least two readers" if r < 2
                                      else "not defined for any pair of readers"),
    }
    return {
        "method": PAIRWISE_METHOD,
        "unit": "case",
        "categories": ["real", "synthetic"],
        "category_basis": CATEGORY_BASIS[design],
        "readers": readers,
        "pairs": pairs,
        "matrix": [{"reader": reader, "kappas": grid[i]} for i, reader in enumerate(readers)],
        "summary": summary,
    }


def _intra_reader(pairs: list[tuple[AnswerRow, AnswerRow]], design: str) -> dict:
    def category(row: AnswerRow) -> str:
        if design == "mixed":
            return row.answer
        return "synthetic" if row.correct else "real"

    categories = ("real", "synthetic")
    by_reader: dict[str, list[tuple[AnswerRow, AnswerRow]]] = defaultdict(list)
    for pair in pairs:
        by_reader[pair[0].reader].append(pair)

    def figure(group: list[tuple[AnswerRow, AnswerRow]], method: str) -> dict:
        first = [category(a) for a, _ in group]
        second = [category(b) for _, b in group]
        result = cohens_kappa(first, second, categories)
        same = sum(x == y for x, y in zip(first, second))
        return {**_kappa_figure(result, method, "case read twice"),
                "agreement": _r(same / len(group)) if group else None}

    return {
        "method": INTRA_METHOD,
        "unit": "case read twice",
        "n": len(pairs),
        "n_readers": len(by_reader),
        "categories": list(categories),
        "category_basis": CATEGORY_BASIS[design],
        "pooled": figure(pairs, INTRA_METHOD + INTRA_POOLED_CAVEAT),
        "readers": [
            {"reader": reader, "specialty": by_reader[reader][0][0].specialty,
             **figure(by_reader[reader], INTRA_METHOD)}
            for reader in sorted(by_reader)
        ],
        "note": None if pairs else "no repeated readings in these answers",
    }

"""A study's main-question first readings as readers x cases arrays, and the ordinal score.

_Matrix is built once per study and read by the sections that need whole
readers x cases tables (the Obuchowski-Rockette analyses, sources, agreement,
specialty and position); _crossed cuts it down to the cases every reader of a
group has. ordinal_score (answer + confidence as 1-10) fills its scores and is
also what the iMRMC export writes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..tidy import AnswerRow

ORDINAL_SCORE = (
    "answer synthetic with confidence c scores 5 + c (6-10); answer real with "
    "confidence c scores 6 - c (1-5); higher means more sure the image is synthetic"
)


class _Matrix:
    """The main-question first readings of a study as readers x cases arrays."""

    def __init__(self, rows: list[AnswerRow], design: str):
        self.readers = sorted({row.reader for row in rows})
        self.cases = sorted({row.case for row in rows})
        reader_index = {reader: i for i, reader in enumerate(self.readers)}
        case_index = {case: j for j, case in enumerate(self.cases)}
        shape = (len(self.readers), len(self.cases))
        self.correct = np.full(shape, -1, dtype=np.int8)
        self.category = np.full(shape, -1, dtype=np.int8)  # agreement.CATEGORY_BASIS: 0 real, 1 synthetic
        self.score = np.full(shape, np.nan)
        self.position = np.zeros(shape, dtype=np.int64)
        self.truth = np.full(len(self.cases), -1, dtype=np.int8)  # mixed: 1 synthetic
        self.source = np.full(len(self.cases), "", dtype=object)  # synthetic source ("" real or not named)
        for row in rows:
            i, j = reader_index[row.reader], case_index[row.case]
            self.correct[i, j] = row.correct
            self.position[i, j] = row.position
            synthetic = row.answer == "synthetic" if design == "mixed" else bool(row.correct)
            self.category[i, j] = int(synthetic)
            self.source[j] = row.source
            if design == "mixed":
                self.truth[j] = int(row.truth == "synthetic")
                if row.confidence is not None:
                    self.score[i, j] = ordinal_score(row)
        # Set by the report when readers are incomplete under the rule "all"
        # (completeness.py): the multi-reader figures are then not estimable.
        self.unbalanced_note: str | None = None
        specialty = {row.reader: row.specialty for row in rows}
        self.specialty = np.array([specialty[reader] for reader in self.readers], dtype=object)

    def rows_of(self, readers: Sequence[str]) -> np.ndarray:
        index = {reader: i for i, reader in enumerate(self.readers)}
        return np.array([index[reader] for reader in readers], dtype=int)


def ordinal_score(row: AnswerRow) -> int:
    """1 (sure real) .. 10 (sure synthetic); see ORDINAL_SCORE."""
    if row.confidence is None:
        raise ValueError("the ordinal score needs a confidence rating")
    return 5 + row.confidence if row.answer == "synthetic" else 6 - row.confidence


def _crossed(matrix: _Matrix, readers: Sequence[str], values: np.ndarray, missing) -> tuple[np.ndarray, np.ndarray]:
    """values[readers] restricted to the cases every one of them has; returns (submatrix, case mask)."""
    sub = values[matrix.rows_of(readers)]
    have = ~np.isnan(sub) if missing is np.nan else sub != missing
    keep = have.all(axis=0) if len(readers) else np.zeros(sub.shape[1], dtype=bool)
    return sub[:, keep], keep

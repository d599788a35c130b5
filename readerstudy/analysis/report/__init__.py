"""The report: assembled from tidy rows with the functions of analysis.statistics.

build (build_report, flat_rows) is the entry point; each section has its own
module (groups, mrmc, agreement, specialty_position, sources,
further_questions), sharing matrix (readers x cases arrays) and format (the
figure dicts); plots draws the figures.
"""

from .build import FLAT_COLUMNS, FORMAT, build_report, flat_rows

__all__ = ["FLAT_COLUMNS", "FORMAT", "build_report", "flat_rows"]

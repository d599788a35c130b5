import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.loader import render_to_string
from django.utils.html import escape

from readerstudy.analysis import imrmc
from readerstudy.analysis.csvsafe import spreadsheet_safe
from readerstudy.analysis.report.plots import report_figures
from readerstudy.analysis.report import FLAT_COLUMNS, build_report, flat_rows
from readerstudy.analysis.report.completeness import DEFAULT_RULE, RULES, read_exclusions
from readerstudy.analysis.report.format import for_display
from readerstudy.analysis.report.stamps import make_stamp, software_version
from readerstudy.analysis.tidy import utc_text
from readerstudy.analysis.tidy import TidyFormatError, read_csv

# The site's stylesheet is not available to a saved file, so the standalone
# page inlines the report's own stylesheet (static/css/report.css: tables,
# figures, print) under a minimal page style that reads in light and dark themes.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
:root {{ color-scheme: light dark; font-family: system-ui, sans-serif; }}
body {{ margin: 2rem; line-height: 1.4; }}
{css}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""
REPORT_CSS = Path(settings.BASE_DIR) / "static" / "css" / "report.css"


class Command(BaseCommand):
    help = (
        "Analyse a tidy answer CSV (see readerstudy/analysis/tidy.py) or an iMRMC input file "
        "(recognised by its 'BEGIN DATA:' line) and print the report."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="tidy answer CSV, as written by `manage.py export`, or an iMRMC input file")
        parser.add_argument("--format", dest="output_format", choices=["json", "csv", "html"], default="json")
        parser.add_argument("--margin", type=float, default=0.10, help="TOST equivalence margin around 0.5")
        parser.add_argument("--bootstrap", type=int, default=2000,
                            help="bootstrap resamples for Fleiss' kappa and the grading kappas")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
        parser.add_argument(
            "--choices", action="append", default=[], metavar="KEY=A,B,C",
            help="declare a further question's choices in order (repeatable), e.g. kl_grade=0,1,2,3,4; "
                 "KEY= declares it free text. Undeclared questions are graded when every value is a number.",
        )
        parser.add_argument("--scale", action="append", default=[], metavar="KEY=nominal|ordinal",
                            help="declare a choice question nominal (unweighted kappa, Fleiss' kappa) or ordinal "
                                 "(linear and quadratic weighted kappa); undeclared: ordinal when every choice is a number")
        parser.add_argument("--weights", action="append", default=[], metavar="KEY=FILE.csv",
                            help="an ordinal question's own agreement weights: a k x k CSV of numbers in the "
                                 "order of its choices, 1 on the diagonal")
        parser.add_argument("--rule", choices=sorted(RULES), default=DEFAULT_RULE,
                            help="which readers the analyses use: " + "; ".join(f"{k}: {v}" for k, v in RULES.items()))
        parser.add_argument("--exclusions", metavar="FILE.csv",
                            help="recorded exclusions: a CSV with the columns study,reader,case,reason "
                                 "(case empty: the whole reader)")

    def handle(self, file: str, output_format: str, margin: float, bootstrap: int, seed: int, choices, rule=DEFAULT_RULE,
               exclusions=None, scale=(), weights=(), **options):
        try:
            with open(file, newline="", encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            raise CommandError(f"cannot read {file}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{file}: not a UTF-8 text file") from None
        if imrmc.is_imrmc(text):
            self._imrmc(file, text, output_format)
            return
        try:
            rows = read_csv(io.StringIO(text, newline=""))
        except TidyFormatError as error:
            raise CommandError(f"{file}: {error}") from None
        if not rows:
            raise CommandError(f"{file}: no answers after the header")
        if bootstrap < 0:
            raise CommandError("--bootstrap must be 0 or more")
        excluded = _exclusions(exclusions) if exclusions else []
        try:
            report = build_report(rows, margin=margin, bootstrap=bootstrap, seed=seed,
                                  questions=_declared(choices), rule=rule, exclusions=excluded,
                                  scales=_scales(scale), weights=_weights(weights),
                                  stamp=make_stamp(rows, source=f"file {Path(file).name}"))
        except ValueError as error:  # e.g. a margin that leaves no room around 0.5
            raise CommandError(str(error)) from None

        if output_format == "json":
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        elif output_format == "csv":
            self._csv(FLAT_COLUMNS, flat_rows(report))  # full precision, stamped
        else:
            shown = for_display(report)
            body = render_to_string("analysis/report_body.html", {"report": shown, "figures": report_figures(shown)})
            title = escape("Reader study report: " + ", ".join(study["study"] for study in report["studies"]))
            self.stdout.write(PAGE.format(title=title, body=body, css=_css()), ending="")

    def _imrmc(self, file: str, text: str, output_format: str) -> None:
        try:
            report = imrmc.mrmc_report(imrmc.from_imrmc(text))
        except imrmc.ImrmcFormatError as error:
            raise CommandError(f"{file}: {error}") from None
        report["stamp"] = {"generated_at": utc_text(datetime.now(timezone.utc)), "software": software_version(),
                           "source": f"file {Path(file).name}", "studies": []}
        if output_format == "json":
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        elif output_format == "csv":
            self._csv(imrmc.FLAT_COLUMNS, imrmc.flat_rows(report))
        else:
            shown = for_display(report)
            body = render_to_string("analysis/mrmc_body.html", {"report": shown, "figures": report_figures(shown)})
            title = escape("MRMC analysis: " + (report["title"] or file))
            self.stdout.write(PAGE.format(title=title, body=body, css=_css()), ending="")

    def _csv(self, columns, rows) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
        self.stdout.write(buffer.getvalue(), ending="")


def _scales(options) -> dict[str, str]:
    out = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip() or value.strip() not in ("nominal", "ordinal"):
            raise CommandError(f"--scale {option!r}: expected KEY=nominal or KEY=ordinal")
        out[key.strip()] = value.strip()
    return out


def _weights(options) -> dict[str, list[list[float]]]:
    out = {}
    for option in options:
        key, sep, path = option.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise CommandError(f"--weights {option!r}: expected KEY=FILE.csv")
        try:
            with open(path.strip(), newline="", encoding="utf-8") as handle:
                matrix = [[float(cell) for cell in row] for row in csv.reader(handle) if row]
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None
        except ValueError:
            raise CommandError(f"{path}: weights must be numbers") from None
        if not matrix or any(len(row) != len(matrix) for row in matrix):
            raise CommandError(f"{path}: weights must be a square table")
        out[key.strip()] = matrix
    return out


def _exclusions(path: str) -> list:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return read_exclusions(handle)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise CommandError(f"{path}: {error}") from None


def _declared(options: list[str]) -> dict[str, list[str] | None]:
    declared: dict[str, list[str] | None] = {}
    for option in options:
        key, sep, values = option.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--choices {option!r}: expected KEY=A,B,C (or KEY= for free text)")
        items = [value.strip() for value in values.split(",") if value.strip()]
        if len(items) == 1:
            raise CommandError(f"--choices {option!r}: give at least two choices, or none for free text")
        declared[key.strip()] = items or None
    return declared


def _css() -> str:
    try:
        return REPORT_CSS.read_text(encoding="utf-8")
    except OSError:
        return ""

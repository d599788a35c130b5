import csv
import io
import json

from django.core.management.base import BaseCommand, CommandError
from django.template.loader import render_to_string
from django.utils.html import escape

from readerstudy.analysis.report import FLAT_COLUMNS, build_report, flat_rows
from readerstudy.analysis.tidy import TidyFormatError, read_csv

# The site's stylesheet is not available to a saved file, so the standalone
# page carries just enough style to read in light and dark themes.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
:root {{ color-scheme: light dark; font-family: system-ui, sans-serif; }}
body {{ margin: 2rem; line-height: 1.4; }}
.report-table {{ border-collapse: collapse; margin: 0.5rem 0; }}
.report-table th, .report-table td {{ border: 1px solid color-mix(in srgb, currentColor 25%, transparent); padding: 0.2rem 0.5rem; text-align: left; }}
.report-table .num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.report-level th {{ background: color-mix(in srgb, currentColor 8%, transparent); }}
.report-methods, .report-meta, .report-settings, .note {{ font-size: 0.9em; opacity: 0.8; }}
.report-scroll {{ overflow-x: auto; }}
.report-table .ci {{ white-space: nowrap; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""


class Command(BaseCommand):
    help = "Analyse a tidy answer CSV (see readerstudy/analysis/tidy.py) and print the report."

    def add_arguments(self, parser):
        parser.add_argument("file", help="tidy answer CSV, as written by `manage.py export`")
        parser.add_argument("--format", dest="output_format", choices=["json", "csv", "html"], default="json")
        parser.add_argument("--margin", type=float, default=0.10, help="TOST equivalence margin around 0.5")
        parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for Fleiss' kappa")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")

    def handle(self, file: str, output_format: str, margin: float, bootstrap: int, seed: int, **options):
        try:
            with open(file, newline="", encoding="utf-8") as handle:
                rows = read_csv(handle)
        except OSError as error:
            raise CommandError(f"cannot read {file}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{file}: not a UTF-8 text file") from None
        except TidyFormatError as error:
            raise CommandError(f"{file}: {error}") from None
        if not rows:
            raise CommandError(f"{file}: no answers after the header")
        if bootstrap < 0:
            raise CommandError("--bootstrap must be 0 or more")
        try:
            report = build_report(rows, margin=margin, bootstrap=bootstrap, seed=seed)
        except ValueError as error:  # e.g. a margin that leaves no room around 0.5
            raise CommandError(str(error)) from None

        if output_format == "json":
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        elif output_format == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=FLAT_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(flat_rows(report))
            self.stdout.write(buffer.getvalue(), ending="")
        else:
            body = render_to_string("analysis/report_body.html", {"report": report})
            title = escape("Reader study report: " + ", ".join(study["study"] for study in report["studies"]))
            self.stdout.write(PAGE.format(title=title, body=body), ending="")

"""The report's figures as inline SVG, built from the report dict alone.

report_figures(report) returns name -> SVG markup; every figure shows only
numbers that are in the report (and so in its JSON), and states its method,
n and unit of analysis in a caption inside the SVG. No plotting library: the
markup is assembled from strings, with every text escaped.

Names, for study i of report["studies"] (i from 0):

    "{i}-forest"        accuracy per group and reader with 95% intervals, the 0.5
                        line and the equivalence band
    "{i}-confusion"     answers by truth, pooled and per specialty
    "{i}-roc"           empirical ROC curve per reader (mixed designs)
    "{i}-position"      accuracy by reading position, with the trend test
    "{i}-pairwise"      Cohen's kappa between every two readers (two readers or more)
    "{i}-further-{key}" grading agreement on real and synthetic images, per
                        further choice question
    "{i}-sources"       per synthetic source: reader-averaged accuracy (paired)
                        or AUC and sensitivity (mixed) with 95% intervals, and
                        the test of equal sources (two sources or more)

and, for the report of an iMRMC file (imrmc.mrmc_report), "mrmc-roc".

Colours work on light and dark pages: text and axes use currentColor, data
use the Okabe-Ito palette; the report's print CSS keeps them on paper.
"""

from __future__ import annotations

import html
import math
import textwrap
from typing import Iterable, Sequence

from ..tidy import SPECIALTIES

PALETTE = {
    "radiologist": "#0072B2", "radiology_resident": "#56B4E9", "orthopaedic_surgeon": "#D55E00",
    "orthopaedic_resident": "#E69F00", "radiographer": "#CC79A7", "other": "#009E73", None: "#555555",
}
EXTRA_COLOURS = ("#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
FONT = 12
LINE = 15


def _count(n, noun: str) -> str:
    """'1 reader', '12 readers'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def report_figures(report: dict) -> dict[str, str]:
    """name -> SVG markup (see the module docstring), from the report dict only.

    The markup is safe to insert into a page as it is (all text is escaped);
    a template still has to mark it safe.
    """
    if report.get("format") == "readerstudy-mrmc-report/1":
        return {"mrmc-roc": _mrmc_roc(report)} if report.get("readers") else {}
    figures: dict[str, str] = {}
    margin = report.get("settings", {}).get("margin", 0.1)
    for i, study in enumerate(report.get("studies", [])):
        if study["n_answers"] == 0 or study.get("empty"):
            continue
        figures[f"{i}-forest"] = forest_plot(study, margin)
        figures[f"{i}-confusion"] = confusion_matrices(study)
        if study["design"] == "mixed" and any(g.get("auc", {}).get("roc") for g in study["groups"]):
            figures[f"{i}-roc"] = roc_curves(study)
        if study.get("position", {}).get("bins"):
            figures[f"{i}-position"] = position_plot(study)
        if len(study.get("pairwise", {}).get("readers", [])) >= 2:
            figures[f"{i}-pairwise"] = kappa_heatmap(study)
        if study.get("sources"):
            figures[f"{i}-sources"] = sources_plot(study)
        for question in study.get("further_questions", []):
            if question.get("kind") == "choice":
                figures[f"{i}-further-{question['question']}"] = grading_plot(question)
    if report.get("interim"):
        figures = {name: _mark_interim(svg) for name, svg in figures.items()}
    return figures


INTERIM_MARK = ('<text x="99%" y="99%" font-size="11" font-weight="bold" text-anchor="end" fill="#D55E00" '
                'class="interim-mark">INTERIM report: figures may change</text>')


def _mark_interim(svg: str) -> str:
    """Every figure of an interim report says so itself (it may be copied out of the page)."""
    head, tail = svg.rsplit("</svg>", 1)
    return head + INTERIM_MARK + "</svg>" + tail


# --- building blocks -------------------------------------------------------------------


class _Svg:
    def __init__(self, width: int, title: str):
        self.width = width
        self.title = title
        self.parts: list[str] = []
        self.height = 0

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def text(self, x: float, y: float, content: str, *, anchor: str = "start", size: int = FONT,
             weight: str | None = None, rotate: float | None = None, fill: str = "currentColor",
             cls: str | None = None) -> None:
        attrs = [f'x="{x:.1f}"', f'y="{y:.1f}"', f'font-size="{size}"', f'text-anchor="{anchor}"', f'fill="{fill}"']
        if weight:
            attrs.append(f'font-weight="{weight}"')
        if rotate is not None:
            attrs.append(f'transform="rotate({rotate:.0f} {x:.1f} {y:.1f})"')
        if cls:
            attrs.append(f'class="{cls}"')
        self.add(f"<text {' '.join(attrs)}>{_esc(content)}</text>")

    def line(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = "currentColor", width: float = 1,
             dash: str | None = None, opacity: float | None = None) -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        extra += f' stroke-opacity="{opacity}"' if opacity is not None else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
                 f'stroke-width="{width}"{extra}/>')

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str, opacity: float | None = None,
             stroke: str | None = None, title: str | None = None) -> None:
        extra = f' fill-opacity="{opacity:.3f}"' if opacity is not None else ""
        extra += f' stroke="{stroke}"' if stroke else ""
        body = f"<title>{_esc(title)}</title>" if title else ""
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
                 f'fill="{fill}"{extra}>{body}</rect>' if body else
                 f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
                 f'fill="{fill}"{extra}/>')

    def circle(self, x: float, y: float, r: float, *, fill: str, title: str | None = None) -> None:
        body = f"<title>{_esc(title)}</title>" if title else ""
        self.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}">{body}</circle>')

    def polyline(self, points: Iterable[tuple[float, float]], *, stroke: str, width: float = 1.5,
                 opacity: float | None = None, title: str | None = None) -> None:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        extra = f' stroke-opacity="{opacity}"' if opacity is not None else ""
        body = f"<title>{_esc(title)}</title>" if title else ""
        self.add(f'<polyline points="{coords}" fill="none" stroke="{stroke}" stroke-width="{width}"{extra}>'
                 f"{body}</polyline>")

    def caption(self, y: float, lines: Sequence[str], *, width_chars: int | None = None) -> float:
        """Wrapped caption lines from y; returns the y below them."""
        chars = width_chars or max(40, int(self.width / (FONT * 0.55)))
        for paragraph in lines:
            for piece in textwrap.wrap(paragraph, chars) or [""]:
                y += LINE
                self.text(8, y, piece, size=FONT - 1, cls="figure-caption")
        return y

    def render(self, description: str) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="report-svg" role="img" '
            f'viewBox="0 0 {self.width} {self.height:.0f}" width="{self.width}" height="{self.height:.0f}" '
            f'font-family="system-ui, sans-serif">'
            f"<title>{_esc(self.title)}</title><desc>{_esc(description)}</desc>"
            + "".join(self.parts)
            + "</svg>"
        )


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float | None) -> str:
    return "—" if value is None else repr(value) if isinstance(value, float) else str(value)


def _ci(ci: Sequence[float] | None) -> str:
    return "—" if not ci else f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _colour(specialty: str | None, others: dict[str, str] | None = None) -> str:
    if specialty in PALETTE:
        return PALETTE[specialty]
    return (others or {}).get(specialty or "", PALETTE[None])


def _axis_x(svg: _Svg, x0: float, x1: float, y: float, low: float, high: float, ticks: Sequence[float],
            label: str) -> None:
    svg.line(x0, y, x1, y)
    for tick in ticks:
        x = x0 + (tick - low) / (high - low) * (x1 - x0)
        svg.line(x, y, x, y + 4)
        svg.text(x, y + 16, _tick(tick), anchor="middle", size=FONT - 1)
    svg.text((x0 + x1) / 2, y + 32, label, anchor="middle")


def _axis_y(svg: _Svg, y0: float, y1: float, x: float, low: float, high: float, ticks: Sequence[float],
            label: str) -> None:
    """y0 is the top (high), y1 the bottom (low)."""
    svg.line(x, y0, x, y1)
    for tick in ticks:
        y = y1 - (tick - low) / (high - low) * (y1 - y0)
        svg.line(x - 4, y, x, y)
        svg.text(x - 6, y + 4, _tick(tick), anchor="end", size=FONT - 1)
    svg.text(x - 40, (y0 + y1) / 2, label, anchor="middle", rotate=-90)


def _tick(value: float) -> str:
    return f"{value:g}"


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low
    step = 10 ** math.floor(math.log10(span / count)) if span > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if span / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


# --- forest plot -----------------------------------------------------------------------


def forest_plot(study: dict, margin: float) -> str:
    """Accuracy with 95% intervals: readers (Clopper–Pearson, unit answer) and the
    pooled and specialty groups (Obuchowski–Rockette when defined, else Clopper–Pearson)."""
    groups = study["groups"]
    label_w, plot_w, value_w = 190, 360, 300
    row_h = 18
    width = label_w + plot_w + value_w
    svg = _Svg(width, f"{study['study']}: accuracy per group and reader")
    top = 30
    x0, x1 = label_w, label_w + plot_w

    def x(value: float) -> float:
        return x0 + value * plot_w

    svg.text(8, 18, f"Accuracy ({study['study']}, {study['design']} design)", weight="bold")
    bottom = top + row_h * len(groups) + 6
    svg.rect(x(0.5 - margin), top - 4, x(0.5 + margin) - x(0.5 - margin), bottom - top + 4, fill="#009E73",
             opacity=0.15, title=f"equivalence margin 0.5 ± {margin}")
    svg.line(x(0.5), top - 4, x(0.5), bottom, dash="4 3")
    or_used = False
    for k, group in enumerate(groups):
        y = top + row_h * k + row_h / 2
        accuracy = group["accuracy"]
        mrmc = group.get("mrmc_accuracy")
        if mrmc and mrmc.get("ci"):
            estimate, ci, source = mrmc["estimate"], mrmc["ci"], "OR"
            or_used = True
        else:
            estimate, ci, source = accuracy["estimate"], accuracy["ci_clopper_pearson"], "CP"
        name = group["label"] if group["level"] != "specialty" else group["label"].replace("_", " ")
        prefix = {"pooled": "", "specialty": "  ", "reader": "    "}[group["level"]]
        svg.text(8, y + 4, prefix + name, weight="bold" if group["level"] != "reader" else None)
        colour = _colour(group["specialty"])
        if ci:
            svg.line(x(ci[0]), y, x(ci[1]), y, stroke=colour, width=2 if group["level"] != "reader" else 1.5)
        if estimate is not None:
            if group["level"] == "reader":
                svg.circle(x(estimate), y, 3.5, fill=colour, title=f"{group['label']}: {_fmt(estimate)} {_ci(ci)}")
            else:
                svg.rect(x(estimate) - 4, y - 4, 8, 8, fill=colour, title=f"{name}: {_fmt(estimate)} {_ci(ci)}")
        n_text = (f"n={accuracy['n']}" if source == "CP"
                  else f"{_count(group['n_readers'], 'reader')} × {_count(mrmc['n'], 'case')}")
        svg.text(x1 + 8, y + 4, f"{_fmt(estimate)} {_ci(ci)} {n_text}", size=FONT - 1)
    _axis_x(svg, x0, x1, bottom, 0, 1, [0, 0.25, 0.5, 0.75, 1], "accuracy (proportion correct)")
    lines = [
        "Method: readers: proportion correct with 95% Clopper-Pearson interval (unit: answer; n = answers). "
        + ("Pooled and specialty rows: Obuchowski-Rockette mean of the readers' proportions correct, random readers "
           "and random cases, 95% t interval with Hillis df (unit: reader x case; n = readers x cases read by all)."
           if or_used else "Pooled and specialty rows: Clopper-Pearson, answers pooled over readers."),
        f"Dashed line: chance (0.5). Band: equivalence margin 0.5 ± {margin}. "
        f"n = {_count(study['n_answers'], 'answer')} by {_count(study['n_readers'], 'reader')} "
        f"on {_count(study['n_cases'], 'case')}.",
    ]
    svg.height = svg.caption(bottom + 40, lines) + 8
    return svg.render(" ".join(lines))


# --- confusion matrices ----------------------------------------------------------------


def confusion_matrices(study: dict) -> str:
    panels = [g for g in study["groups"] if g["level"] in ("pooled", "specialty")]
    cell = 56
    panel_w = 2 * cell + 120
    width = max(480, panel_w * len(panels) + 16)
    svg = _Svg(width, f"{study['study']}: confusion matrices")
    svg.text(8, 18, f"Answers by truth ({study['study']})", weight="bold")
    top = 76
    for p, group in enumerate(panels):
        confusion = group["confusion"]
        categories = confusion["categories"]
        counts = confusion["counts"]
        left = 16 + p * panel_w + 70
        name = group["label"].replace("_", " ")
        svg.text(left + cell, top - 30, f"{name} (n={confusion['n']})", anchor="middle", weight="bold")
        for j, category in enumerate(categories):
            svg.text(left + cell * j + cell / 2, top - 8, category, anchor="middle", size=FONT - 1)
        for i, truth in enumerate(categories):
            svg.text(left - 6, top + cell * i + cell / 2 + 4, truth, anchor="end", size=FONT - 1)
            total = sum(counts[i])
            for j in range(len(categories)):
                share = counts[i][j] / total if total else 0
                colour = "#009E73" if i == j else "#D55E00"
                svg.rect(left + cell * j, top + cell * i, cell, cell, fill=colour, opacity=0.1 + 0.6 * share,
                         stroke="currentColor",
                         title=f"truth {truth}, answer {categories[j]}: {counts[i][j]} of {total}")
                svg.text(left + cell * j + cell / 2, top + cell * i + cell / 2, str(counts[i][j]), anchor="middle",
                         weight="bold")
                if total:
                    svg.text(left + cell * j + cell / 2, top + cell * i + cell / 2 + 14, f"{share:.0%}",
                             anchor="middle", size=FONT - 2)
        svg.text(left + cell, top + 2 * cell + 16, "answer", anchor="middle", size=FONT - 1)
        svg.text(left - 50, top + cell, "truth", anchor="middle", size=FONT - 1, rotate=-90)
    lines = [
        f"Method: {panels[0]['confusion']['method']}, first readings, pooled over the readers of each panel; "
        "percentages are shares of the row (truth). Unit: answer; n per panel as shown.",
    ]
    svg.height = svg.caption(top + 2 * cell + 24, lines) + 8
    return svg.render(" ".join(lines))


# --- ROC curves ------------------------------------------------------------------------


def roc_curves(study: dict) -> str:
    readers = [g for g in study["groups"] if g["level"] == "reader" and g.get("auc", {}).get("roc")]
    pooled = study["groups"][0].get("auc", {})
    size = 300
    legend_w = 260
    width = 70 + size + legend_w
    svg = _Svg(width, f"{study['study']}: ROC curves per reader")
    svg.text(8, 18, f"Detecting synthetic images: ROC per reader ({study['study']})", weight="bold")
    x0, y0 = 60, 34
    svg.rect(x0, y0, size, size, fill="none", stroke="currentColor")
    svg.line(x0, y0 + size, x0 + size, y0, dash="4 3", opacity=0.6)
    for reader in readers:
        colour = _colour(reader["specialty"])
        points = [(x0 + fpf * size, y0 + size - tpf * size) for fpf, tpf in reader["auc"]["roc"]]
        svg.polyline(points, stroke=colour, opacity=0.8,
                     title=f"{reader['label']}: AUC {_fmt(reader['auc']['estimate'])} (n={reader['auc']['n']})")
    _axis_x(svg, x0, x0 + size, y0 + size, 0, 1, [0, 0.25, 0.5, 0.75, 1],
            "false positive fraction (real called synthetic)")
    _axis_y(svg, y0, y0 + size, x0, 0, 1, [0, 0.25, 0.5, 0.75, 1], "true positive fraction")
    lx = x0 + size + 20
    ly = y0 + 10
    present = [s for s in SPECIALTIES if any(r["specialty"] == s for r in readers)]
    for s in present:
        svg.line(lx, ly - 4, lx + 20, ly - 4, stroke=_colour(s), width=2)
        count = sum(r["specialty"] == s for r in readers)
        svg.text(lx + 26, ly, f"{s.replace('_', ' ')} ({_count(count, 'reader')})", size=FONT - 1)
        ly += LINE
    ly += 6
    svg.text(lx, ly, f"Reader-averaged AUC {_fmt(pooled.get('estimate'))}", size=FONT - 1)
    svg.text(lx, ly + LINE, f"95% CI {_ci(pooled.get('ci'))}", size=FONT - 1)
    if pooled.get("p") is not None:
        svg.text(lx, ly + 2 * LINE, f"test of AUC = 0.5: p = {_fmt(pooled['p'])}", size=FONT - 1)
    lines = [
        "Method: empirical ROC points of the ordinal score (answer and confidence, 1-10; synthetic is positive), "
        "one curve per reader; its area is the reader's trapezoidal AUC. Reader-averaged AUC: "
        "Obuchowski-Rockette, random readers and random cases, Hillis df.",
        f"Unit: answer (per curve); n = {sum(r['auc']['n'] for r in readers)} rated answers by {_count(len(readers), 'reader')}"
        f"; reader-averaged AUC over {_count(pooled.get('n'), 'case')} rated by every reader (unit: reader x case).",
    ]
    svg.height = svg.caption(y0 + size + 44, lines) + 8
    return svg.render(" ".join(lines))


# --- accuracy by reading position -------------------------------------------------------


def position_plot(study: dict) -> str:
    position = study["position"]
    bins = [b for b in position["bins"] if b["estimate"] is not None]
    trend = position["trend"]
    width, height = 620, 240
    svg = _Svg(width, f"{study['study']}: accuracy by reading position")
    svg.text(8, 18, f"Accuracy by reading position ({study['study']})", weight="bold")
    x0, x1, y0, y1 = 70, width - 30, 36, 36 + height - 80
    last = max((b["last"] for b in position["bins"]), default=1)
    lows = [b["ci_wilson"][0] for b in bins if b["ci_wilson"]] + [0.5]
    highs = [b["ci_wilson"][1] for b in bins if b["ci_wilson"]] + [0.5]
    low = max(0.0, math.floor((min(lows) - 0.02) * 20) / 20)
    high = min(1.0, math.ceil((max(highs) + 0.02) * 20) / 20)
    if high - low < 0.1:
        high = min(1.0, low + 0.1)

    def px(pos: float) -> float:
        return x0 + (pos - 0.5) / max(last, 1) * (x1 - x0)

    def py(value: float) -> float:
        return y1 - (value - low) / (high - low) * (y1 - y0)

    if low <= 0.5 <= high:
        svg.line(x0, py(0.5), x1, py(0.5), dash="4 3", opacity=0.7)
    points = []
    for b in bins:
        mid = (b["first"] + b["last"]) / 2
        if b["ci_wilson"]:
            svg.line(px(mid), py(b["ci_wilson"][0]), px(mid), py(b["ci_wilson"][1]), stroke="#0072B2", width=2)
        svg.circle(px(mid), py(b["estimate"]), 4, fill="#0072B2",
                   title=f"positions {b['first']}-{b['last']}: {_fmt(b['estimate'])} {_ci(b['ci_wilson'])} n={b['n']}")
        svg.text(px(mid), y1 - 6, f"n={b['n']}", anchor="middle", size=FONT - 2)
        points.append((px(mid), py(b["estimate"])))
    if len(points) > 1:
        svg.polyline(points, stroke="#0072B2", width=1, opacity=0.5)
    _axis_x(svg, x0, x1, y1, 0.5, last + 0.5, _nice_ticks(1, last), "reading position")
    _axis_y(svg, y0, y1, x0, low, high, _nice_ticks(low, high, 4), "accuracy")
    if trend.get("estimate") is not None:
        trend_text = (f"Trend: odds ratio per 100 readings {_fmt(trend['estimate'])} {_ci(trend['ci'])}, "
                      f"p = {_fmt(trend['p'])} ({_count(trend['n_readers'], 'reader')}, {_count(trend['n'], 'answer')}).")
    else:
        trend_text = f"Trend: {trend.get('note') or 'not defined'}."
    lines = [
        f"Method: first readings in {len(position['bins'])} equal bins of reading position; proportion correct "
        "with 95% Wilson interval, answers pooled over readers (unit: answer; n per bin as shown). "
        "Dashed line: chance (0.5).",
        trend_text + " " + trend["method"] + ".",
    ]
    svg.height = svg.caption(y1 + 40, lines) + 8
    return svg.render(" ".join(lines))


# --- pairwise kappa ----------------------------------------------------------------------


def kappa_heatmap(study: dict) -> str:
    pairwise = study["pairwise"]
    readers = pairwise["readers"]
    r = len(readers)
    cell = max(10, min(30, 420 // r))
    label_w = 110
    width = max(520, label_w + cell * r + 150)
    svg = _Svg(width, f"{study['study']}: Cohen's kappa between readers")
    svg.text(8, 18, f"Agreement between readers: pairwise Cohen's kappa ({study['study']})", weight="bold")
    top = 40 + (label_w if r > 0 else 0) // 2
    left = label_w
    show_values = r <= 12
    for j, reader in enumerate(readers):
        svg.text(left + cell * j + cell / 2 + 4, top - 6, reader, size=FONT - 2, rotate=-60)
    for i, row in enumerate(pairwise["matrix"]):
        svg.text(left - 6, top + cell * i + cell / 2 + 4, row["reader"], anchor="end", size=FONT - 2)
        for j, value in enumerate(row["kappas"]):
            if i == j:
                svg.rect(left + cell * j, top + cell * i, cell, cell, fill="currentColor", opacity=0.08)
                continue
            if value is None:
                svg.rect(left + cell * j, top + cell * i, cell, cell, fill="none", stroke="currentColor",
                         title=f"{row['reader']} vs {readers[j]}: not defined")
                continue
            colour = "#0072B2" if value >= 0 else "#D55E00"
            svg.rect(left + cell * j, top + cell * i, cell, cell, fill=colour, opacity=0.1 + 0.8 * min(1, abs(value)),
                     title=f"{row['reader']} vs {readers[j]}: kappa {_fmt(value)}")
            if show_values:
                svg.text(left + cell * j + cell / 2, top + cell * i + cell / 2 + 4, f"{round(value, 2) + 0.0:.2f}",
                         anchor="middle",
                         size=FONT - 3)
    lx = left + cell * r + 20
    for k, (value, label) in enumerate(((1, "kappa 1"), (0.5, "0.5"), (0, "0"), (-0.5, "-0.5"))):
        colour = "#0072B2" if value >= 0 else "#D55E00"
        svg.rect(lx, top + k * 18, 14, 14, fill=colour, opacity=0.1 + 0.8 * abs(value))
        svg.text(lx + 20, top + k * 18 + 11, label, size=FONT - 1)
    summary = pairwise["summary"]
    lines = [
        f"Method: {pairwise['method']}; categories: {pairwise['category_basis']}. Unit: {pairwise['unit']}; "
        f"n = cases both readers read, per pair (up to {study['n_cases']}).",
        f"{summary['n']} pairs defined: mean kappa {_fmt(summary['estimate'])}, range {_fmt(summary['min'])} to "
        f"{_fmt(summary['max'])}.",
    ]
    svg.height = svg.caption(top + cell * r + 10, lines) + 8
    return svg.render(" ".join(lines))


# --- further questions -------------------------------------------------------------------


def grading_plot(question: dict) -> str:
    rows = []
    for block, label in (("vs_reference", "vs reference"), ("between_readers", "between readers")):
        for source in ("real", "synthetic", "all"):
            figure = (question.get(block) or {}).get(source)
            if figure is not None:
                rows.append((f"{label}: {source}", figure, source))
    label_w, plot_w, value_w = 200, 320, 240
    width = label_w + plot_w + value_w
    row_h = 20
    svg = _Svg(width, f"{question['question']}: quadratic-weighted kappa on real and synthetic images")
    svg.text(8, 18, f"Grading agreement: {question['question']}", weight="bold")
    top = 32
    values = [v for _, f, _ in rows for v in ([f["estimate"]] + (f["ci"] or [])) if v is not None]
    low = min([0.0] + values)
    low = math.floor(low * 4) / 4

    def x(value: float) -> float:
        return label_w + (value - low) / (1 - low) * plot_w

    bottom = top + row_h * len(rows) + 6
    svg.line(x(0), top - 4, x(0), bottom, dash="4 3", opacity=0.6)
    colours = {"real": "#0072B2", "synthetic": "#D55E00", "all": "#555555"}
    for k, (label, figure, source) in enumerate(rows):
        y = top + row_h * k + row_h / 2
        svg.text(8, y + 4, label)
        if figure["ci"]:
            svg.line(x(figure["ci"][0]), y, x(figure["ci"][1]), y, stroke=colours[source], width=2)
        if figure["estimate"] is not None:
            svg.circle(x(figure["estimate"]), y, 4, fill=colours[source],
                       title=f"{label}: {_fmt(figure['estimate'])} {_ci(figure['ci'])}")
        svg.text(label_w + plot_w + 8, y + 4, f"{_fmt(figure['estimate'])} {_ci(figure['ci'])} n={figure['n']}",
                 size=FONT - 1)
    _axis_x(svg, label_w, label_w + plot_w, bottom, low, 1, _nice_ticks(low, 1, 5), "quadratic-weighted kappa")
    lines = []
    for block, label in (("vs_reference", "Against the reference label"), ("between_readers", "Between readers")):
        difference = (question.get(block) or {}).get("difference")
        if difference:
            lines.append(f"{label}: difference synthetic - real {_fmt(difference['estimate'])} "
                         f"{_ci(difference['ci'])} ({_count(difference['n'], 'case')}).")
    first = (question.get("vs_reference") or {}).get("all") or {}
    lines.append(
        f"Method: {first.get('method', '')}. Between readers: pooled over every pair of readers grading a case. "
        f"Intervals: case bootstrap, {first.get('n_boot')} resamples. Unit: answer (vs reference), pair of readings "
        f"(between readers); n as shown. Categories {', '.join(question['categories'])}; "
        f"image source: {question.get('source_basis') or 'not defined'}."
    )
    svg.height = svg.caption(bottom + 40, lines) + 8
    return svg.render(" ".join(lines))


# --- synthetic sources -------------------------------------------------------------------


SOURCE_ROWS = {"paired": (("mrmc_accuracy", "accuracy"),), "mixed": (("mrmc_auc", "AUC"), ("mrmc_sensitivity", "sensitivity"))}


def sources_plot(study: dict) -> str:
    """Per source, the Obuchowski-Rockette single-treatment estimate with its 95% t
    interval (random readers and cases, the source's own cases), and the F test."""
    sources = study["sources"]
    kinds = SOURCE_ROWS[study["design"]]
    rows = [(entry["source"], label, entry[key]) for key, label in kinds for entry in sources["per_source"]]
    colours = {name: (list(PALETTE.values())[:3] + list(EXTRA_COLOURS))[k % 8]
               for k, name in enumerate(sources["names"])}
    label_w, plot_w, value_w = 210, 340, 300
    row_h = 20
    width = label_w + plot_w + value_w
    svg = _Svg(width, f"{study['study']}: synthetic sources compared")
    svg.text(8, 18, f"Synthetic sources compared ({study['study']}, {study['design']} design)", weight="bold")
    top = 34
    bottom = top + row_h * len(rows) + 6

    def x(value: float) -> float:
        return label_w + value * plot_w

    svg.line(x(0.5), top - 4, x(0.5), bottom, dash="4 3", opacity=0.7)
    for k, (name, label, figure) in enumerate(rows):
        y = top + row_h * k + row_h / 2
        svg.text(8, y + 4, f"{name}: {label}")
        colour = colours[name]
        if figure.get("ci"):
            svg.line(x(figure["ci"][0]), y, x(figure["ci"][1]), y, stroke=colour, width=2)
        if figure.get("estimate") is not None:
            svg.rect(x(figure["estimate"]) - 4, y - 4, 8, 8, fill=colour,
                     title=f"{name} {label}: {_fmt(figure['estimate'])} {_ci(figure.get('ci'))}")
        svg.text(label_w + plot_w + 8, y + 4,
                 f"{_fmt(figure.get('estimate'))} {_ci(figure.get('ci'))} "
                 f"{_count(figure['n_readers'], 'reader')} × {_count(figure['n'], 'case')}", size=FONT - 1)
    _axis_x(svg, label_w, label_w + plot_w, bottom, 0, 1, [0, 0.25, 0.5, 0.75, 1], "reader-averaged figure of merit")
    tests = []
    for kind, comparison in sources["comparisons"].items():
        test = comparison.get("test")
        label = "AUC" if kind == "auc" else kind
        if test:
            tests.append(f"Equal {label} across sources: F = {_fmt(test['statistic'])} on {test['df1']} and "
                         f"{_fmt(test['df2'])} df, p = {_fmt(test['p'])} ({_count(comparison['n_readers'], 'reader')}, "
                         f"{_count(comparison['n'], 'case')} in the union).")
        else:
            tests.append(f"Equal {label} across sources: {comparison.get('note') or 'not defined'}.")
    lines = [
        "Method: per source, Obuchowski-Rockette single-treatment analysis of that source's own cases, random "
        "readers and random cases, mean of the readers' figures with a 95% t interval (Hillis df). "
        + ("Accuracy: proportion correct on the source's cases. " if study["design"] == "paired" else
           "AUC: ordinal score, the source's synthetic images against all real images; sensitivity: share of "
           "the source's synthetic images answered synthetic. ")
        + "Unit: reader x case; n = readers x the source's cases, as shown. Dashed line: 0.5.",
        *tests,
        f"Design: {sources['design']}.",
    ]
    svg.height = svg.caption(bottom + 40, lines) + 8
    return svg.render(" ".join(lines))


# --- iMRMC report ---------------------------------------------------------------------------


def _mrmc_roc(report: dict) -> str:
    readers = report["readers"]
    modalities = report["modalities"]
    colours = {m: (list(PALETTE.values())[:3] + list(EXTRA_COLOURS))[i % 8] for i, m in enumerate(modalities)}
    size = 300
    width = 70 + size + 260
    svg = _Svg(width, "ROC curves per reader and modality")
    svg.text(8, 18, "ROC per reader and modality", weight="bold")
    x0, y0 = 60, 34
    svg.rect(x0, y0, size, size, fill="none", stroke="currentColor")
    svg.line(x0, y0 + size, x0 + size, y0, dash="4 3", opacity=0.6)
    for reader in readers:
        points = [(x0 + fpf * size, y0 + size - tpf * size) for fpf, tpf in reader["roc"]]
        svg.polyline(points, stroke=colours[reader["modality"]], opacity=0.8,
                     title=f"{reader['reader']}, {reader['modality']}: AUC {_fmt(reader['estimate'])}")
    _axis_x(svg, x0, x0 + size, y0 + size, 0, 1, [0, 0.25, 0.5, 0.75, 1], "false positive fraction")
    _axis_y(svg, y0, y0 + size, x0, 0, 1, [0, 0.25, 0.5, 0.75, 1], "true positive fraction")
    ly = y0 + 10
    analysis = report["analyses"]["random_readers_random_cases"]
    for treatment in analysis["treatments"]:
        m = treatment["modality"]
        svg.line(x0 + size + 20, ly - 4, x0 + size + 40, ly - 4, stroke=colours[m], width=2)
        svg.text(x0 + size + 46, ly, f"{m}: AUC {_fmt(treatment['estimate'])} {_ci(treatment['ci'])}",
                 size=FONT - 1)
        ly += LINE
    lines = [
        "Method: empirical ROC points of each reader's scores (truth 1 positive), one curve per reader and modality; "
        "legend: reader-averaged AUC, Obuchowski-Rockette, random readers and random cases, Hillis df.",
        f"Unit: case (per curve; n = {_count(report['n_cases'], 'case')}, {report['n_positive']} positive); "
        f"{_count(report['n_readers'], 'reader')}.",
    ]
    svg.height = svg.caption(y0 + size + 44, lines) + 8
    return svg.render(" ".join(lines))

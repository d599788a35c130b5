"""Inline SVG figures: built from the report dict alone, well-formed, escaped, captioned, rendered."""

import json
import xml.etree.ElementTree as ET

import pytest
from django.template.loader import render_to_string

from readerstudy.analysis.imrmc import from_imrmc, mrmc_report, to_imrmc
from readerstudy.analysis.report.plots import report_figures
from readerstudy.analysis.report import build_report
from readerstudy.analysis.tidy import simulate_rows

READERS = {f"r{i}": (["radiologist", "orthopaedic_surgeon", "other"][i % 3], 0.5 + 0.05 * (i % 4)) for i in range(6)}
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def mixed():
    rows = simulate_rows(study='knee <script>alert("x")</script> & co', design="mixed", readers=READERS,
                         n_cases=60, seed=41, repeats=6, grade="kl_grade")
    return build_report(rows, bootstrap=100)


@pytest.fixture(scope="module")
def paired():
    return build_report(simulate_rows(study="pairs", design="paired", readers=READERS, n_cases=50, seed=42),
                        bootstrap=100)


def _text(svg: str) -> str:
    return " ".join(t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text"))


def test_names_and_well_formed_svg(mixed, paired):
    figures = report_figures(mixed)
    assert set(figures) == {"0-forest", "0-confusion", "0-roc", "0-position", "0-pairwise", "0-further-kl_grade"}
    assert set(report_figures(paired)) == {"0-forest", "0-confusion", "0-position", "0-pairwise"}
    for svg in [*figures.values(), *report_figures(paired).values()]:
        root = ET.fromstring(svg)  # well-formed XML
        assert root.tag == f"{SVG}svg" and root.get("role") == "img"
        assert root.find(f"{SVG}title").text and root.find(f"{SVG}desc").text
        text = _text(svg)
        assert "Method" in text and ("Unit" in text or "unit" in text)
        assert "n =" in text or "n=" in text


def test_text_is_escaped(mixed):
    figures = report_figures(mixed)
    assert "<script>" not in "".join(figures.values())
    assert 'knee <script>alert("x")</script> & co' in _text(figures["0-forest"])  # shown as text, not markup


def test_figures_come_from_the_json_alone(mixed):
    assert report_figures(json.loads(json.dumps(mixed))) == report_figures(mixed)


def test_figures_show_the_dicts_numbers(mixed):
    study = mixed["studies"][0]
    figures = report_figures(mixed)
    pooled = study["groups"][0]
    forest = _text(figures["0-forest"])
    ci = pooled["mrmc_accuracy"]["ci"]
    assert f"{pooled['mrmc_accuracy']['estimate']!r} [{ci[0]!r}, {ci[1]!r}]" in forest
    reader = study["groups"][-1]
    assert f"n={reader['accuracy']['n']}" in forest and "equivalence margin 0.5 ± 0.1" in forest
    confusion = _text(figures["0-confusion"])
    assert all(str(count) in confusion.split() for row in pooled["confusion"]["counts"] for count in row)
    assert f"Reader-averaged AUC {pooled['auc']['estimate']!r}" in _text(figures["0-roc"])
    trend = study["position"]["trend"]
    assert f"odds ratio per 100 readings {trend['estimate']!r}" in _text(figures["0-position"])
    grade = study["further_questions"][0]
    assert repr(grade["vs_reference"]["difference"]["estimate"]) in _text(figures["0-further-kl_grade"])


def test_empty_and_degenerate_reports():
    assert report_figures({"format": "readerstudy-report/1", "settings": {}, "studies": []}) == {}
    one = build_report(simulate_rows(readers={"solo": ("other", 0.6)}, n_cases=10, seed=1), bootstrap=0)
    figures = report_figures(one)
    assert "0-pairwise" not in figures and "0-forest" in figures
    for svg in figures.values():
        ET.fromstring(svg)


def test_imrmc_report_figure():
    rows = simulate_rows(study="m", design="mixed", readers=READERS, n_cases=40, seed=43)
    report = mrmc_report(from_imrmc(to_imrmc(rows)))
    (name,) = report_figures(report)
    assert name == "mrmc-roc"
    assert "Method" in _text(report_figures(report)[name])


def test_template_renders_with_and_without_figures(mixed):
    without = render_to_string("analysis/report_body.html", {"report": mixed})
    assert "<svg" not in without and "Agreement within readers" in without and "kl_grade" in without
    study = mixed["studies"][0]
    assert f">{study['specialty_model']['comparisons'][0]['estimate']}<" in without
    assert f">{study['intra_reader']['pooled']['estimate']}<" in without
    assert f">{study['further_questions'][0]['vs_reference']['difference']['estimate']}<" in without
    with_figures = render_to_string("analysis/report_body.html", {"report": mixed, "figures": report_figures(mixed)})
    assert with_figures.count("<svg") == 6 and "&lt;script&gt;" in with_figures and "<script>" not in with_figures

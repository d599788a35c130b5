"""{% figure figures index "name" as svg %}: one SVG from plots.report_figures.

figures is the dict report_figures returned (or nothing: then every figure is
empty and the report renders without them); index is the study's position in
report.studies; name e.g. "forest" or "further-kl_grade". The markup was
built by plots.py with every text escaped, so it is marked safe here.
"""

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def figure(figures, index, name):
    if not figures:
        return ""
    markup = figures.get(f"{index}-{name}")
    return mark_safe(markup) if markup else ""


@register.filter
def get_item(mapping, key):
    """mapping[key], or None: for dicts keyed by data (case numbers, specialties)."""
    if not mapping:
        return None
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def specialty(code):
    """A specialty's name for the page ("orthopaedic_surgeon" -> "Orthopaedic surgeon"); JSON and CSV keep the code."""
    from readerstudy.accounts.models import Specialty

    if code in Specialty.values:
        return Specialty(code).label
    return "" if code is None else code


@register.filter
def group_label(group):
    """A report group's row heading: "all readers", a specialty's name, or the reader."""
    return specialty(group.get("label")) if group.get("level") == "specialty" else group.get("label")

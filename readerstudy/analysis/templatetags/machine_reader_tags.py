"""{% machine_reading study report as mr %}: the machine reader's summary for the report page,
with the readers' pooled accuracy from the report dict beside it (see _machine_reader.html)."""

from __future__ import annotations

from django import template

from readerstudy.analysis.machine_reader import machine_summary

register = template.Library()


@register.simple_tag
def machine_reading(study, report=None) -> dict:
    summary = machine_summary(study)
    pooled = None
    for entry in (report or {}).get("studies", [])[:1]:
        pooled = next((g for g in entry.get("groups", []) if g.get("level") == "pooled"), None)
    return {"summary": summary, "readers": pooled["accuracy"] if pooled else None, "study": study}

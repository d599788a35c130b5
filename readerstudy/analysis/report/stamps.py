"""The stamp every report carries: when it was made, by which software, from which state of the study.

A report printed mid-study must not look final, and a figure must be
traceable to the code that computed it. The stamp holds: generated_at (UTC),
software (`git describe --always --dirty` of the checkout, else the
installed package version, else "unknown"), source ("site" or the file
analysed), and per study: state (the lifecycle state: draft, ready, open, closed, archived; or
"unknown" for a file), protocol_hash (Study.protocol_hash where the study
has one; None otherwise), and last_answer_at (the latest answered_at in the
rows).
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from ..tidy import AnswerRow, utc_text

REPOSITORY = Path(__file__).resolve().parents[3]


@lru_cache(maxsize=1)
def software_version() -> str:
    try:
        described = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=REPOSITORY,
                                   capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        if described:
            return f"readerstudy {described}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from importlib.metadata import version

        return f"readerstudy {version('readerstudy')}"
    except Exception:  # noqa: BLE001 - not installed as a package: say so rather than fail
        return "readerstudy (version unknown)"


def make_stamp(rows: Iterable[AnswerRow], *, source: str, states: Mapping[str, dict] | None = None,
               now: datetime | None = None) -> dict:
    """The stamp for a report of these rows; states: study name -> {state, protocol_hash}."""
    last: dict[str, str] = {}
    for row in rows:
        if row.answered_at > last.get(row.study, ""):
            last[row.study] = row.answered_at  # ISO 8601 UTC text sorts as time
    states = states or {}
    return {
        "generated_at": utc_text(now or datetime.now(timezone.utc)),
        "software": software_version(),
        "source": source,
        "studies": [
            {"study": name, "state": states.get(name, {}).get("state", "unknown"),
             "protocol_hash": states.get(name, {}).get("protocol_hash"), "last_answer_at": last[name]}
            for name in sorted(last)
        ],
    }

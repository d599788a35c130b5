"""The demo: a CT-rendered stand-in archive and the generator trained on it.

The site renders the same archive (same function, size, count and seed) and samples
from DEMO_CHECKPOINT; generator/checkpoints/README.md has the commands that made it.
"""

from __future__ import annotations

from pathlib import Path

from .physics import find_demo_ct, render_archive

DEMO_RESOLUTION = 128
DEMO_ARCHIVE_COUNT = 400
DEMO_ARCHIVE_SEED = 1000
DEMO_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "demo-dcgan.safetensors"


def build_demo_archive(out_dir: str | Path) -> list[Path]:
    """Render the demo archive: DEMO_ARCHIVE_COUNT 16-bit PNGs of the demo chest CT."""
    return render_archive(find_demo_ct(), out_dir, DEMO_ARCHIVE_COUNT, DEMO_RESOLUTION, DEMO_ARCHIVE_SEED)

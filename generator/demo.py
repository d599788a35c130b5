"""The demo: a CT-rendered stand-in archive and the generator trained on it.

The site renders the same archive (same function, size, count and seed) and samples
from DEMO_CHECKPOINT; generator/checkpoints/README.md has the commands that made it.
"""

from __future__ import annotations

from pathlib import Path

from .physics import find_demo_ct, render_archive

DEMO_RESOLUTION = 256
DEMO_ARCHIVE_COUNT = 400
DEMO_ARCHIVE_SEED = 1000
DEMO_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "demo-stylegan2.safetensors"
DEMO_PRIVACY_SCREEN = DEMO_CHECKPOINT.with_name("demo-stylegan2.privacy.safetensors")


def build_demo_archive(out_dir: str | Path, count: int = DEMO_ARCHIVE_COUNT) -> list[Path]:
    """Render the demo archive: 16-bit PNGs of the demo chest CT.

    ``count`` below DEMO_ARCHIVE_COUNT renders the first images of the training
    archive (the same seeds), which is what the site's demo uses to be ready in minutes.
    """
    return render_archive(find_demo_ct(), out_dir, count, DEMO_RESOLUTION, DEMO_ARCHIVE_SEED)

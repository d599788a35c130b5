"""PNG writing and tiling for [0, 1] float images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def save_png(pixels: np.ndarray, path: str | Path, bits: int = 16) -> Path:
    """Write a float HxW image in [0, 1] as an 8- or 16-bit grayscale PNG."""
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    top = 255 if bits == 8 else 65535
    scaled = np.round(np.clip(pixels, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scaled).save(path)
    return path


def make_grid(images: Sequence[np.ndarray], columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Tile equally sized HxW images row by row, separated by `gap` black pixels."""
    if not images:
        raise ValueError("no images to tile")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    h, w = images[0].shape
    grid = np.zeros((rows * (h + gap) - gap, columns * (w + gap) - gap), dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return grid

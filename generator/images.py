"""PNG writing and tiling for [0, 1] float images."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def save_png(pixels: np.ndarray, path: str | Path, bits: int = 16) -> Path:
    """Write a float HxW image in [0, 1] as an 8- or 16-bit grayscale PNG."""
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    top = 255 if bits == 8 else 65535
    scaled = np.round(np.clip(pixels, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if bits == 16:
        path.write_bytes(encode_png16(scaled))
    else:
        Image.fromarray(scaled).save(path)
    return path


def png16_scanlines(levels: torch.Tensor) -> torch.Tensor:
    """(B, H, W) grey levels 0..65535 -> (B, H, 2W + 1) uint8 16-bit PNG scanlines, "Up"-filtered.

    Each row is filter byte 2, then each big-endian byte minus the byte above it (modulo
    256, as uint8 arithmetic wraps). Runs where `levels` is: on a GPU, so that the host
    threads of generator/production.py only compress. On smooth radiographs "Up" makes
    files as small as Pillow's per-row filter search, at a fraction of its cost.
    """
    levels = levels.to(torch.int32)
    count, height, width = levels.shape
    rows = torch.stack([levels >> 8, levels & 255], dim=-1).to(torch.uint8).reshape(count, height, 2 * width)
    lines = torch.empty((count, height, 2 * width + 1), dtype=torch.uint8, device=levels.device)
    lines[:, :, 0] = 2
    lines[:, :1, 1:] = rows[:, :1]
    torch.sub(rows[:, 1:], rows[:, :-1], out=lines[:, 1:, 1:])
    return lines


def png16_file(scanlines: np.ndarray, compress_level: int = 1) -> bytes:
    """The PNG file of one image's filtered scanlines (png16_scanlines); zlib releases the GIL."""
    height, row_bytes = scanlines.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", (row_bytes - 1) // 2, height, 16, 0, 0, 0, 0)  # 16-bit grey, no interlace
    # Run-length matches only: filtered radiographs have runs (flat background) and few
    # longer repeats, so this is as small as zlib level 1 and over twice as fast.
    deflate = zlib.compressobj(compress_level, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = deflate.compress(np.ascontiguousarray(scanlines)) + deflate.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def encode_png16(pixels: np.ndarray, compress_level: int = 1) -> bytes:
    """A 16-bit greyscale PNG of a uint16 HxW array (png16_scanlines, then png16_file)."""
    if pixels.dtype != np.uint16 or pixels.ndim != 2 or not pixels.size:
        raise ValueError(f"need a non-empty 2-D uint16 array, got {pixels.dtype} {pixels.shape}")
    lines = png16_scanlines(torch.from_numpy(pixels.astype(np.int32))[None])[0].numpy()
    return png16_file(lines, compress_level)


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

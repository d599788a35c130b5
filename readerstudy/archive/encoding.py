"""The one encoder every presentation image goes through, real or synthetic.

Blinding depends on this module: a real radiograph and a synthetic one are
both reduced to a float array in [0, 1], cropped, resized and quantised by the
same code with the same parameters, and written as a PNG that carries nothing
but the pixels (no text chunks, no timestamps, no physical size, no ICC
profile). Any difference a reader could find in the file is a difference in
the pixels themselves.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

PNG_COMPRESS_LEVEL = 6
CONTENT_TYPE = "image/png"


def center_square(pixels: np.ndarray) -> np.ndarray:
    """Crop the central square: synthetic images are square, so real ones must be too."""
    height, width = pixels.shape
    side = min(height, width)
    top = (height - side) // 2
    left = (width - side) // 2
    return pixels[top : top + side, left : left + side]


def to_presentation(pixels: np.ndarray, size: int, bit_depth: int) -> np.ndarray:
    """Turn a float image in [0, 1] into the study's presentation pixels.

    Returns an unsigned integer array of shape (size, size): uint8 for 8-bit
    pools, uint16 for 16-bit pools.
    """
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale array, got shape {pixels.shape}")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, not {bit_depth}")
    square = np.clip(np.nan_to_num(center_square(pixels).astype(np.float32)), 0.0, 1.0)
    if square.shape[0] != size:
        resample = Image.Resampling.BOX if square.shape[0] > size else Image.Resampling.BICUBIC
        square = np.asarray(Image.fromarray(square).resize((size, size), resample=resample))
        square = np.clip(square, 0.0, 1.0)
    top = (1 << bit_depth) - 1
    levels = np.rint(square * top)
    return levels.astype(np.uint8 if bit_depth == 8 else np.uint16)


def pixel_sha256(levels: np.ndarray) -> str:
    """Hash of the presentation pixels themselves: identifies duplicates across formats."""
    digest = hashlib.sha256()
    digest.update(f"{levels.dtype.str}:{levels.shape}".encode())
    digest.update(np.ascontiguousarray(levels).tobytes())
    return digest.hexdigest()


def encode_png(levels: np.ndarray) -> bytes:
    """Encode presentation pixels as a metadata-free grayscale PNG."""
    if levels.dtype == np.uint8:
        image = Image.fromarray(levels)
    elif levels.dtype == np.uint16:
        image = Image.fromarray(levels.astype("<u2"))
    else:
        raise ValueError(f"presentation pixels must be uint8 or uint16, not {levels.dtype}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Inverse of encode_png, for tests and rebuild checks."""
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image)
    return array.astype(np.uint16) if array.dtype != np.uint8 else array

"""The one presentation step every image goes through, real or synthetic.

Blinding depends on this module. Nothing a reader's browser receives may tell the
source apart except the anatomy, so every image, whatever made it, is:

1. reduced to a float array, centre-cropped to a square and resized (``square``);
2. normalised the same way (``normalise``): clipped at its own 1st and 99th
   percentiles and rescaled to [0, 1]. Every image therefore has 1 % of its
   pixels at the lowest and at the highest value (a real archive clipped at fixed
   percentiles before export no longer stands out by its extremes), and the
   viewer's "Full" window (0.5th-99.5th percentile) opens every image at exactly
   the full range. Since presentation version 2 the share is *exactly* the same
   for every image (``EXTREME_SHARE`` of its pixels, rounded, at each end): the
   darkest and brightest pixels are chosen by rank, ties broken by one fixed
   pseudo-random order of positions, and every other pixel is kept off the two end
   levels. Without it the share depended on ties at the percentile (a real image's
   source grid has them, a generator's float output has none) and on the image's
   histogram slope there: on the demo the share at the darkest level told the
   source with AUC 0.73. A generator's output reaches this step unclipped
   (``SampleResult.unclipped``), so its saturation too is decided here and not by
   the generator's own clip to [0, 1] (AUC 0.64 from that alone);
3. quantised to the pool's grey-level grid (``quantise``): ``grey_levels`` levels
   ``q`` (0..L-1), stored as ``q * step`` with ``step = (2**bit_depth - 1) // (L - 1)``.
   A pool's grid is measured at its first import: half the fewest grey levels any
   of its real images has between those percentiles (``levels_in_window``; half, so
   that re-gridding a real image never leaves empty levels a continuous synthetic
   image would not have: on a 12-bit DICOM pool the full count let the number of
   levels used tell the source with AUC 0.63, half brought it to 0.51), capped at
   4,096 levels (12 bits) and one level per 64 pixels. Synthetic images are
   brought to the same grid by the same function, so grey-level parity and step
   say nothing about the source. The cap keeps every level well populated (a
   256 x 256 image gets 1,024 levels, 64 pixels per level; 512 x 512 and larger
   get 4,096), so the count of levels used is the same for nearly every image
   rather than a function of how sparsely its histogram's tails scatter over a fine
   grid: at 16 pixels per level (4,096 levels at 256 px) a 12-bit DICOM pool left
   a median of 12 levels empty in real images and 9 in synthetic ones, AUC 0.65;
   at 64, AUC 0.505 on the same images (bench/blinding_audit.py);
4. written by ``encode_png``: grayscale, no ancillary chunk, filter type 0 (None)
   on every row and the zlib stream *stored* (deflate level 0). The file size is
   then a function of width, height and bit depth alone: every image of a pool
   has exactly the same number of bytes, and there is no per-image filter choice.
   The cost is size: a 256 x 256 16-bit image is 131,406 bytes, about 2.3 times what
   zlib gives the demo's images (bench/blinding_audit.py prints the figure). Padding
   compressed files to a fixed size would cost as much: the bound is the stored size.

What the anatomy looks like (noise texture, sharpness) is the generator's fidelity
and is not touched: the steps above are monotone intensity maps and a fixed grid.

Pools imported before this presentation step existed have no grid
(``grey_levels`` is None): their images and studies stay as they were stored, so
``rebuild_study`` still confirms them pixel for pixel (``to_presentation`` keeps
the old min-max path for them). Re-import such an archive into a new pool for new
studies (README, Blinding).
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import zlib

import numpy as np
from PIL import Image

CONTENT_TYPE = "image/png"
NORMALISE_PERCENTILES = (1.0, 99.0)
EXTREME_SHARE = 0.01  # exactly this share of every image's pixels at each end level (presentation version 2)
PRESENTATION_VERSION = 2  # 1: grid, rounded ends; 2: exact end shares, unclipped synthetic input
MAX_GREY_LEVELS = 4096  # 12 bits: the depth of most for-presentation radiographs
PIXELS_PER_LEVEL = 64  # smaller images get fewer levels, so that every level stays populated
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_FILTER_NONE = 0
ZLIB_STORED = 0


def center_square(pixels: np.ndarray) -> np.ndarray:
    """Crop the central square: synthetic images are square, so real ones must be too."""
    height, width = pixels.shape
    side = min(height, width)
    top = (height - side) // 2
    left = (width - side) // 2
    return pixels[top : top + side, left : left + side]


def square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop and resize a float image to size x size (float32, values not yet normalised)."""
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale array, got shape {pixels.shape}")
    cropped = np.nan_to_num(center_square(pixels).astype(np.float32))
    if cropped.shape[0] != size:
        resample = Image.Resampling.BOX if cropped.shape[0] > size else Image.Resampling.BICUBIC
        cropped = np.asarray(Image.fromarray(cropped).resize((size, size), resample=resample), dtype=np.float32)
    return cropped


def window(values: np.ndarray) -> tuple[float, float]:
    """The normalisation window: the image's own 1st and 99th percentiles (its full range if those meet)."""
    low, high = (float(v) for v in np.percentile(values, NORMALISE_PERCENTILES))
    if high <= low:
        low, high = float(values.min()), float(values.max())
    return low, high


def normalise(values: np.ndarray) -> np.ndarray:
    """Clip at the percentile window and rescale to [0, 1]; the same for every image."""
    low, high = window(values)
    if high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return np.clip((values.astype(np.float64) - low) / (high - low), 0.0, 1.0).astype(np.float32)


def grid_step(values: np.ndarray) -> float:
    """The spacing of the grid an image's values lie on: the median gap between its distinct values.

    On a quantised source (8-, 12- or 16-bit) most neighbouring distinct values are one
    source level apart; on a continuous one (a generator's float output) the median gap
    is tiny. Resampling (a BOX downscale averages pixels) refines the grid, so this is
    measured on the presentation-sized square.
    """
    distinct = np.unique(values.astype(np.float64))
    if distinct.size < 2:
        return float("inf")
    return float(np.median(np.diff(distinct)))


def levels_in_window(values: np.ndarray) -> int:
    """How many grey levels of its own source an image has between its normalisation percentiles."""
    low, high = window(values)
    step = grid_step(values)
    if not np.isfinite(step) or step <= 0 or high <= low:
        return 1
    return int(min((high - low) / step + 1, 1 << 20))


def pool_grey_levels(measured: list[int], bit_depth: int, size: int) -> int:
    """A pool's grid: half the fewest levels any of its real images has, within what the container and the cap allow.

    The cap is 4,096 levels (12 bits), and one level per 64 pixels for small images.
    """
    cap = min(MAX_GREY_LEVELS, size * size // PIXELS_PER_LEVEL)
    # Half the fewest: a source re-gridded onto as many levels as it has itself leaves a few
    # empty levels (its grid and the pool's do not line up), which a continuous synthetic
    # image never does; at half, every pool level spans at least one source level.
    return int(max(2, min([*(count // 2 for count in measured), cap, 1 << bit_depth])))


def quantise(unit: np.ndarray, bit_depth: int, grey_levels: int) -> np.ndarray:
    """Values in [0, 1] onto the grid of ``grey_levels`` levels, stored as multiples of one step."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, not {bit_depth}")
    top = (1 << bit_depth) - 1
    if not 2 <= grey_levels <= top + 1:
        raise ValueError(f"a {bit_depth}-bit pool holds 2 to {top + 1} grey levels, not {grey_levels}")
    step = top // (grey_levels - 1)
    levels = np.rint(np.clip(unit, 0.0, 1.0).astype(np.float64) * (grey_levels - 1)).astype(np.int64) * step
    return levels.astype(np.uint8 if bit_depth == 8 else np.uint16)


def quantise_exact_ends(values: np.ndarray, bit_depth: int, grey_levels: int) -> np.ndarray:
    """Normalise and quantise with exactly ``EXTREME_SHARE`` of the pixels on each end level.

    The darkest and brightest ``k`` pixels by rank (ties in the fixed order of
    ``_tie_order``) take the end levels; the window runs from the k-th darkest to the k-th
    brightest value, and every other pixel is rescaled by it onto the levels in between.
    """
    flat = values.astype(np.float64).ravel()
    count = flat.size
    if flat.min() == flat.max():  # a blank image (a collapsed generator): blank, never salted with invented ends
        return quantise(np.zeros(values.shape), bit_depth, grey_levels)
    ends = max(1, int(round(count * EXTREME_SHARE)))
    if 2 * ends >= count:
        raise ValueError(f"an image of {count} pixels is too small to present")
    order = np.lexsort((_tie_order(count), flat))
    low, high = flat[order[ends - 1]], flat[order[count - ends]]
    top_level = grey_levels - 1
    if high > low:
        inner = np.rint(np.clip((flat - low) / (high - low), 0.0, 1.0) * top_level)
        inner = np.clip(inner, 1, max(1, top_level - 1))
    else:  # flat between the ends: one middle level
        inner = np.full(count, max(1, top_level // 2), dtype=np.float64)
    inner[order[:ends]] = 0
    inner[order[count - ends:]] = top_level
    return quantise(inner.reshape(values.shape) / top_level, bit_depth, grey_levels)


@functools.lru_cache(maxsize=8)
def _tie_order(count: int) -> np.ndarray:
    """One fixed pseudo-random rank per pixel position: which of equal pixels count as darker.

    Random rather than raster order, so that a flat region split between an end level and
    the next shows as fine noise under the narrowest window, never as a line.
    """
    return np.random.default_rng(20261130).permutation(count)


def to_presentation(pixels: np.ndarray, size: int, bit_depth: int, grey_levels: int | None = None,
                    version: int = PRESENTATION_VERSION) -> np.ndarray:
    """Turn a float image into the pool's presentation pixels (uint8 or uint16, size x size).

    With ``grey_levels`` (every pool imported since the presentation step existed): the
    percentile normalisation and the pool's grid, with exact end shares from version 2.
    Without (older pools only): values in [0, 1] are clipped and spread over the whole
    container, as those pools were stored.
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, not {bit_depth}")
    squared = square(pixels, size)
    if grey_levels is None:
        top = (1 << bit_depth) - 1
        return np.rint(np.clip(squared, 0.0, 1.0) * top).astype(np.uint8 if bit_depth == 8 else np.uint16)
    return present_square(squared, bit_depth, grey_levels, version)


def present_square(squared: np.ndarray, bit_depth: int, grey_levels: int, version: int = PRESENTATION_VERSION) -> np.ndarray:
    """A presentation-sized float square onto the pool's grid, by the pool's presentation version."""
    if version >= 2:
        return quantise_exact_ends(squared, bit_depth, grey_levels)
    return quantise(normalise(squared), bit_depth, grey_levels)


def pixel_sha256(levels: np.ndarray) -> str:
    """Hash of the presentation pixels themselves: identifies duplicates across formats."""
    digest = hashlib.sha256()
    digest.update(f"{levels.dtype.str}:{levels.shape}".encode())
    digest.update(np.ascontiguousarray(levels).tobytes())
    return digest.hexdigest()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(levels: np.ndarray) -> bytes:
    """Presentation pixels as a metadata-free grayscale PNG whose size depends on its dimensions alone.

    Filter type 0 on every row and stored (uncompressed) deflate: no choice is made per
    image, and two images of the same size and depth are exactly as long.
    """
    if levels.ndim != 2 or levels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"presentation pixels must be a 2-D uint8 or uint16 array, not {levels.dtype} {levels.shape}")
    height, width = levels.shape
    depth = 8 if levels.dtype == np.uint8 else 16
    rows = np.ascontiguousarray(levels.astype(">u2") if depth == 16 else levels).reshape(height, -1).view(np.uint8)
    raw = np.hstack([np.full((height, 1), PNG_FILTER_NONE, dtype=np.uint8), rows.reshape(height, -1)]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    return (
        PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, ZLIB_STORED)) + _chunk(b"IEND", b"")
    )


def decode_png(data: bytes) -> np.ndarray:
    """Inverse of encode_png, for tests and rebuild checks."""
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image)
    return array.astype(np.uint16) if array.dtype != np.uint8 else array

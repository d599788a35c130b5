"""Statistics any script can compute from a served PNG without looking at the anatomy.

The blinding audit (bench/blinding_audit.py) and tests/test_blinding_statistics.py
ask whether any of these tells real images from synthetic ones. They describe the
encoding and the quantisation, not what the image shows: the file's size, the PNG
row filters the encoder chose, the bit depth, the grey levels used (count, parity,
common step, the share of pixels at the minimum and at the maximum).
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from readerstudy.archive.encoding import decode_png

FILTER_NAMES = ("none", "sub", "up", "average", "paeth")


def png_rows_filters(data: bytes) -> tuple[int, int, int, list[int]]:
    """(width, height, bit depth, filter type of every row) of a grayscale, non-interlaced PNG."""
    offset, idat, header = 8, [], None
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        offset += 12 + length
    if header is None:
        raise ValueError("not a PNG: no IHDR")
    width, height, depth = header[:3]
    raw = zlib.decompress(b"".join(idat))
    stride = 1 + width * depth // 8
    return width, height, depth, [raw[row * stride] for row in range(height)]


def png_statistics(data: bytes) -> dict[str, float]:
    """The encoding and quantisation statistics of one served PNG (full precision)."""
    width, height, depth, filters = png_rows_filters(data)
    values = decode_png(data).astype(np.int64).ravel()
    distinct = np.unique(values)
    nonzero = distinct[distinct > 0]
    common_step = int(np.gcd.reduce(nonzero)) if nonzero.size else 0
    stats = {
        "file_size": float(len(data)),
        "bit_depth": float(depth),
        **{f"filter_{name}": filters.count(code) / len(filters) for code, name in enumerate(FILTER_NAMES)},
        "grey_levels": float(distinct.size),
        "effective_bits": math.log2(distinct.size) if distinct.size else 0.0,
        "odd_share": float(np.mean(values % 2)),
        "common_step": float(common_step),
        "share_at_min": float(np.mean(values == values.min())),
        "share_at_max": float(np.mean(values == values.max())),
        "min": float(values.min()),
        "max": float(values.max()),
    }
    return stats


def single_statistic_aucs(rows: list[dict[str, float]], synthetic: list[bool]) -> dict[str, float]:
    """Per statistic, the AUC of the best threshold direction (0.5 to 1): how well it alone sorts the sources."""
    from readerstudy.analysis.statistics.mrmc import empirical_auc

    truth = np.asarray(synthetic, dtype=int)
    aucs = {}
    for key in rows[0]:
        scores = np.array([row[key] for row in rows], dtype=float)
        auc = empirical_auc(scores, truth)
        aucs[key] = max(auc, 1.0 - auc)
    return aucs

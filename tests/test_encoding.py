import io
import struct

import numpy as np
from PIL import Image

from readerstudy.archive.encoding import decode_png, encode_png, pixel_sha256, to_presentation


def png_chunks(data: bytes) -> list[str]:
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append(kind.decode())
        offset += 12 + length
    return chunks


def test_png_carries_only_pixels():
    for depth in (8, 16):
        data = encode_png(to_presentation(np.random.default_rng(0).random((40, 60)), 32, depth))
        assert set(png_chunks(data)) == {"IHDR", "IDAT", "IEND"}
        assert Image.open(io.BytesIO(data)).info == {}


def test_round_trip_is_lossless_at_both_depths():
    pixels = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    for depth, dtype in ((8, np.uint8), (16, np.uint16)):
        levels = to_presentation(pixels, 64, depth)
        assert levels.dtype == dtype
        assert np.array_equal(decode_png(encode_png(levels)), levels)


def test_non_square_images_are_centre_cropped_then_resized():
    pixels = np.zeros((40, 80), dtype=np.float32)
    pixels[:, 20:60] = 1.0  # the central square is all white
    levels = to_presentation(pixels, 16, 8)
    assert levels.shape == (16, 16)
    assert levels.min() == 255


def test_same_pixels_same_hash_and_bytes():
    levels = to_presentation(np.random.default_rng(2).random((32, 32)), 32, 16)
    assert pixel_sha256(levels) == pixel_sha256(levels.copy())
    assert encode_png(levels) == encode_png(levels.copy())

import io
import struct

import numpy as np
import pytest
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


# ---- The presentation step (blinding, issue 12a) ----

from readerstudy.archive import encoding  # noqa: E402
from readerstudy.archive.fingerprints import png_rows_filters  # noqa: E402


def test_file_size_depends_on_dimensions_and_depth_alone_and_every_row_is_unfiltered():
    rng = np.random.default_rng(3)
    for depth, dtype in ((8, np.uint8), (16, np.uint16)):
        flat = np.zeros((48, 48), dtype=dtype)
        noisy = rng.integers(0, np.iinfo(dtype).max, (48, 48), endpoint=True).astype(dtype)
        assert len(encode_png(flat)) == len(encode_png(noisy))
        assert png_rows_filters(encode_png(noisy))[3] == [0] * 48
        assert np.array_equal(decode_png(encode_png(noisy)), noisy)


def test_every_image_gets_exactly_one_percent_at_each_end_whatever_its_source_clipped():
    rng = np.random.default_rng(4)
    continuous = rng.random((100, 100))
    clipped = np.clip(rng.normal(0.5, 0.2, (100, 100)), 0.3, 0.8)  # 7 % tied at each end, as a hard clip leaves them
    coarse = np.rint(continuous * 63) / 63  # a coarse source grid: ~160 pixels tied on every value
    for pixels in (continuous, np.rint(continuous * 4095) / 4095, clipped, coarse):
        levels = encoding.to_presentation(pixels, 100, 16, 4096)
        top = 4095 * 16
        assert np.sum(levels == 0) == 100 and np.sum(levels == top) == 100
        assert levels.max() == top and np.all(levels % 16 == 0)
    # The order of a sample is kept: a brighter source pixel is never presented darker.
    levels = encoding.to_presentation(continuous, 100, 16, 4096).astype(np.int64).ravel()
    order = np.argsort(continuous.ravel())
    assert np.all(np.diff(levels[order]) >= 0)


def test_ties_split_at_an_end_scatter_rather_than_draw_a_line():
    """A flat region tied at the darkest value (a collimator border) is split between the two
    darkest levels by a fixed random order of positions, not by rows."""
    pixels = np.linspace(0, 1, 100 * 100).reshape(100, 100)
    pixels[:5] = 0.0  # 5 % tied at the minimum
    dark = encoding.to_presentation(pixels, 100, 16, 4096)[:5] == 0
    assert dark.sum() == 100 and dark.any(axis=1).all() and dark.any(axis=0).sum() > 50


def test_blank_non_finite_and_out_of_range_images_are_presented_without_error():
    blank = encoding.to_presentation(np.full((50, 50), 0.7), 50, 16, 1024)
    assert blank.dtype == np.uint16 and np.all(blank == 0)  # blank stays blank: no invented end pixels
    wild = np.random.default_rng(5).normal(0, 50, (50, 50))  # a generator's output far outside [0, 1]
    wild[0, :5] = [np.nan, np.inf, -np.inf, 1e30, -1e30]
    levels = encoding.to_presentation(wild, 50, 16, 1024)
    assert levels.dtype == np.uint16 and np.sum(levels == 0) == 25 and np.sum(levels == 1023 * 64) == 25


def test_version_1_pools_keep_their_rounded_ends():
    rng = np.random.default_rng(4)
    clipped = np.clip(rng.normal(0.5, 0.2, (100, 100)), 0.3, 0.8)
    assert np.mean(encoding.to_presentation(clipped, 100, 16, 4096, version=1) == 0) > 0.05  # ties kept as they were


def test_quantised_values_are_multiples_of_one_step_of_the_pools_grid():
    levels = encoding.quantise(np.linspace(0, 1, 10_000).reshape(100, 100), 16, 4096)
    assert np.all(levels % 16 == 0) and levels.max() == 4095 * 16 and len(np.unique(levels)) == 4096
    assert encoding.pool_grey_levels([70_000, 9000], 16, 512) == 4096
    assert encoding.pool_grey_levels([70_000, 9000], 16, 256) == 1024  # one level per 64 pixels
    assert encoding.pool_grey_levels([900, 5000], 16, 256) == 450  # half the fewest: no empty levels from re-gridding
    assert encoding.pool_grey_levels([9000], 16, 64) == 64  # one level per 64 pixels


def test_levels_in_window_measures_the_sources_grid():
    rng = np.random.default_rng(5)
    field = rng.random((128, 128))
    assert abs(encoding.levels_in_window(np.rint(field * 4095) / 4095) - 0.98 * 4096) < 40
    assert abs(encoding.levels_in_window(np.rint(field * 255) / 255) - 0.98 * 256) < 5
    assert encoding.levels_in_window(field) > 4096 * 4  # continuous: far finer than any cap


@pytest.mark.django_db(transaction=True)
def test_pools_from_before_exact_ends_keep_version_1_and_new_pools_get_version_2():
    """So that a study made on an older pool still rebuilds pixel for pixel (studies/rebuild.py)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from readerstudy.archive.models import Pool

    executor = MigrationExecutor(connection)
    executor.migrate([("archive", "0002_issue12a_pool_grey_levels")])
    old = executor.loader.project_state([("archive", "0002_issue12a_pool_grey_levels")]).apps
    old.get_model("archive", "Pool").objects.create(name="older", presentation_size=32, bit_depth=16, grey_levels=64)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert Pool.objects.get(name="older").presentation_version == 1
    assert Pool.objects.create(name="newer", presentation_size=32, bit_depth=16).presentation_version == 2

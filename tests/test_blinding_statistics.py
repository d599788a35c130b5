"""The bytes of a served image do not tell its source: file size, PNG filters, grey levels.

Real and synthetic images here have the same content (the same random field process),
so any statistic that separates them can only come from how each source was encoded:
the real ones went through a 16-bit PNG export clipped at fixed percentiles (as the
demo's renderer does) or a 12-bit DICOM, the synthetic ones come as floats, as a
generator makes them. Each statistic of readerstudy.archive.fingerprints must then sort
them no better than AUC 0.6; the old encoding (no normalisation, the full 16-bit grid,
zlib with per-row filters) is shown to fail the same check.
"""

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from readerstudy.archive import encoding
from readerstudy.archive.fingerprints import png_statistics, single_statistic_aucs
from readerstudy.archive.importing import import_images
from readerstudy.archive.models import Image, Pool, Source
from tests.synthetic import twelve_bit_dicom

pytestmark = pytest.mark.django_db

SIZE = 64
COUNT = 40
THRESHOLD = 0.6


def field(seed: int, size: int = SIZE) -> np.ndarray:
    """A radiograph-like float image: a smooth random anatomy plus fine quantum-like noise."""
    rng = np.random.default_rng(seed)
    coarse = PILImage.fromarray(rng.random((8, 8)).astype(np.float32)).resize((size, size), PILImage.Resampling.BICUBIC)
    values = np.asarray(coarse, dtype=np.float64) + rng.normal(0, 0.03, (size, size))
    return (values - values.min()) / (values.max() - values.min())


def demo_like_png(seed: int) -> bytes:
    """A 16-bit PNG windowed at fixed percentiles, as generator/physics.py exports the demo archive."""
    values = field(seed)
    low, high = np.percentile(values, (0.5, 99.5))
    windowed = np.clip((values - low) / (high - low), 0, 1) ** 0.8
    buffer = io.BytesIO()
    PILImage.fromarray(np.rint(windowed * 65535).astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def twelve_bit_dicom_file(seed: int) -> bytes:
    """A 12-bit DX DICOM at 1.5 times the presentation size (so the import also resamples)."""
    return twelve_bit_dicom(np.rint(field(seed, size=SIZE * 3 // 2) * 3800 + 120).astype(np.uint16))


def generator_like(seed: int, gamma: float) -> np.ndarray:
    """What a generator trained on the archive hands over: the archive's look (its display gamma)
    in floats in [0, 1], never quantised, saturating a little at the ends."""
    return np.clip(field(seed) * 1.04 - 0.02, 0.0, 1.0).astype(np.float32) ** gamma


def served_bytes(pool: Pool) -> tuple[list[bytes], list[bool]]:
    images = list(pool.images.order_by("pk"))
    return [image.read_bytes() for image in images], [image.source == Source.SYNTHETIC for image in images]


def build_pool(tmp_path, name: str, make_real, gamma: float) -> Pool:
    folder = tmp_path / name
    folder.mkdir()
    for i in range(COUNT):
        (folder / f"real-{i:03d}").write_bytes(make_real(i))
    pool = Pool.objects.create(name=name, presentation_size=SIZE, bit_depth=16)
    assert len(import_images(folder, pool).imported) == COUNT
    pool.refresh_from_db()
    for i in range(COUNT):
        Image.build(pool, pool.present(generator_like(10_000 + i, gamma)), Source.SYNTHETIC, {"seed": i}).save()
    return pool


@pytest.mark.parametrize(
    "make_real, gamma", [(demo_like_png, 0.8), (twelve_bit_dicom_file, 1.0)], ids=["demo-like 16-bit PNG", "12-bit DICOM"]
)
def test_no_encoding_statistic_tells_the_source(tmp_path, make_real, gamma):
    pool = build_pool(tmp_path, make_real.__name__.replace("_", "-"), make_real, gamma)
    data, synthetic = served_bytes(pool)
    rows = [png_statistics(item) for item in data]
    aucs = single_statistic_aucs(rows, synthetic)
    too_telling = {key: round(auc, 3) for key, auc in aucs.items() if auc > THRESHOLD}
    assert not too_telling, f"statistics that tell the source: {too_telling} (pool grid {pool.grey_levels} levels)"
    # By construction, not by luck: one size, one filter, one grid step for every image.
    assert len({len(item) for item in data}) == 1
    assert all(row["filter_none"] == 1.0 for row in rows)
    assert len({row["common_step"] for row in rows}) == 1
    assert len({(row["share_at_min"], row["share_at_max"]) for row in rows}) == 1  # exact end shares


def test_the_old_encoding_fails_the_same_check(tmp_path):
    """The check has teeth: min-max scaling to the full 16-bit grid and zlib's filters gave the source away."""
    data, synthetic = [], []
    for i in range(COUNT):
        real = np.asarray(PILImage.open(io.BytesIO(demo_like_png(i))), dtype=np.float64) / 65535
        for pixels, is_synthetic in ((real, False), (generator_like(10_000 + i, 0.8), True)):
            levels = encoding.to_presentation(pixels, SIZE, 16)  # the pre-grid path older pools keep
            buffer = io.BytesIO()
            PILImage.fromarray(levels).save(buffer, format="PNG", compress_level=6)
            data.append(buffer.getvalue())
            synthetic.append(is_synthetic)
    aucs = single_statistic_aucs([png_statistics(item) for item in data], synthetic)
    assert max(aucs["share_at_min"], aucs["share_at_max"], aucs["grey_levels"], aucs["file_size"]) > 0.9

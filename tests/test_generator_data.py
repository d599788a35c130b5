"""Training data: 8/16-bit PNG, JPEG, TIFF; cropping, resizing and labels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from generator.data import ImageFolderDataset, read_grayscale, to_resolution


def _ramp(h: int = 40, w: int = 40) -> np.ndarray:
    return np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))


def test_reads_8_and_16_bit_png_by_bit_depth(tmp_path):
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(tmp_path / "b.png")
    assert read_grayscale(tmp_path / "a.png") == pytest.approx(np.full((8, 8), 128 / 255))
    assert read_grayscale(tmp_path / "b.png") == pytest.approx(np.full((8, 8), 32768 / 65535))


def test_reads_jpeg_tiff_and_colour(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "c.jpg")
    Image.fromarray(np.full((8, 8), 1000, np.uint16)).save(tmp_path / "d.tif")
    assert read_grayscale(tmp_path / "c.jpg").mean() == pytest.approx(200 / 255, abs=0.01)
    assert read_grayscale(tmp_path / "d.tif").mean() == pytest.approx(1000 / 65535)


def test_centre_crop_and_resize():
    wide = np.zeros((40, 60), np.float32)
    wide[:, 10:50] = _ramp()
    out = to_resolution(wide, 32)
    assert out.shape == (32, 32) and out.dtype == np.float32
    assert out[:, 0].mean() < 0.05 and out[:, -1].mean() > 0.95  # the crop kept the ramp, not the black margins


def test_dataset_normalises_to_minus_one_one_with_labels(tmp_path):
    ramp = _ramp()
    Image.fromarray(np.round(ramp * 255).astype(np.uint8)).save(tmp_path / "x8.png")
    Image.fromarray(np.round(ramp * 65535).astype(np.uint16)).save(tmp_path / "x16.png")
    (tmp_path / "labels.csv").write_text("filename,label\nx8.png,0\nx16.png,1\n")

    dataset = ImageFolderDataset(tmp_path, 32, tmp_path / "labels.csv")
    images, labels = dataset.load_all()
    assert images.shape == (2, 1, 32, 32) and labels.tolist() == [1, 0]  # sorted: x16, x8
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images[:, 0, :, 0].mean() < -0.9 and images[:, 0, :, -1].mean() > 0.9
    assert (images[0] - images[1]).abs().max() < 0.02  # 8- and 16-bit versions agree

    (tmp_path / "partial.csv").write_text("x8.png,0\n")
    with pytest.raises(ValueError, match="no label"):
        ImageFolderDataset(tmp_path, 32, tmp_path / "partial.csv")


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images"):
        ImageFolderDataset(tmp_path, 32)

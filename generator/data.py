"""Training images: a folder of grayscale radiographs, optionally labelled by a CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def read_grayscale(path: str | Path) -> np.ndarray:
    """Read an image as float32 HxW in [0, 1], scaled by its bit depth (not by its contents).

    Scaling by bit depth keeps each image's own windowing; 8-bit, 16-bit and float
    ("F", assumed already in [0, 1]) images are supported, colour is converted to grey.
    """
    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            pixels = np.asarray(im, dtype=np.float32)
            # 16-bit PNGs can open as 32-bit "I"; anything larger is not a 16-bit image.
            if pixels.max(initial=0) > 65535 or pixels.min(initial=0) < 0:
                raise ValueError(f"{path}: 32-bit integer images are not supported")
            return pixels / 65535.0
        if im.mode == "F":
            return np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def to_resolution(pixels: np.ndarray, resolution: int) -> np.ndarray:
    """Centre-crop to a square and resample (antialiased) to resolution x resolution."""
    h, w = pixels.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = np.ascontiguousarray(pixels[top:top + side, left:left + side], dtype=np.float32)
    if side == resolution:
        return square
    resized = Image.fromarray(square, mode="F").resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def read_labels(csv_path: str | Path) -> dict[str, int]:
    """Read "filename,label" rows (integer labels); a header row is allowed."""
    labels: dict[str, int] = {}
    with open(csv_path, newline="") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise ValueError(f"{csv_path}:{line_no}: expected 'filename,label', got {row}")
            name, label = row[0].strip(), row[1].strip()
            if line_no == 1 and not label.lstrip("-").isdigit():
                continue  # header
            if not label.isdigit():
                raise ValueError(f"{csv_path}:{line_no}: label must be a non-negative integer, got {label!r}")
            labels[name] = int(label)
    return labels


class ImageFolderDataset(Dataset):
    """Grayscale images under `root` (sorted, non-recursive) as (1xRxR tensor in [-1, 1], label).

    Without a labels CSV every label is 0. With one, every image must have a label.
    """

    def __init__(self, root: str | Path, resolution: int, labels_csv: str | Path | None = None) -> None:
        self.root = Path(root)
        self.resolution = resolution
        self.paths = sorted(p for p in self.root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.root}")
        if labels_csv is None:
            self.labels = [0] * len(self.paths)
        else:
            by_name = read_labels(labels_csv)
            missing = [p.name for p in self.paths if p.name not in by_name]
            if missing:
                raise ValueError(f"{len(missing)} images have no label in {labels_csv}, e.g. {missing[:3]}")
            self.labels = [by_name[p.name] for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        pixels = to_resolution(read_grayscale(self.paths[index]), self.resolution)
        return torch.from_numpy(pixels * 2.0 - 1.0).unsqueeze(0), self.labels[index]

    def load_all(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images as one (N, 1, R, R) float32 tensor plus (N,) int64 labels.

        Training keeps the whole set in memory: at these resolutions that is small
        (10,000 images at 256x256 are 2.6 GB) and avoids data-loader workers.
        """
        images = torch.stack([self[i][0] for i in range(len(self))])
        return images, torch.tensor(self.labels, dtype=torch.int64)

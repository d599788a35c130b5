"""Synthetic sources by kind: one way to fingerprint, describe and open each.

A site (or a generation worker with no Django) names a source by its kind and file:
- "gan": our own checkpoint (safetensors + JSON config), served by Sampler;
- "onnx": a model trained elsewhere, `(z, label) -> image` (generator/byo.py), served by Sampler;
- "ct": a CT volume (NIfTI file or DICOM series folder) rendered to radiographs by the
  physics renderer (generator/physics.py, SyntheX-style), served by ProjectionSampler.
Every sampler answers `sample([SampleRequest, ...]) -> [SampleResult, ...]`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

KINDS = ("gan", "onnx", "ct")


def check_kind(kind: str, path: str | os.PathLike[str]) -> None:
    """Refuse a file that cannot be a source of this kind, with the reason."""
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown source kind {kind!r}; one of {', '.join(KINDS)}")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    suffixes = "".join(path.suffixes).lower()
    if kind == "gan" and path.suffix.lower() != ".safetensors":
        raise ValueError(f"{path.name}: a trained generator is a .safetensors checkpoint")
    if kind == "onnx" and path.suffix.lower() != ".onnx":
        raise ValueError(f"{path.name}: bring-your-own generators are .onnx files (TorchScript holds pickles)")
    if kind == "ct" and not (path.is_dir() or suffixes.endswith((".nii", ".nii.gz"))):
        raise ValueError(f"{path.name}: a CT is a NIfTI file (.nii, .nii.gz) or a folder of one DICOM series")


def fingerprint(kind: str, path: str | os.PathLike[str]) -> str:
    """SHA-256 identifying the source's file (or DICOM folder)."""
    check_kind(kind, path)
    if kind == "ct":
        from .physics import volume_sha256

        return volume_sha256(path)
    from .checkpoints import checkpoint_sha256

    return checkpoint_sha256(path)


def describe(kind: str, path: str | os.PathLike[str]) -> dict[str, Any]:
    """The source's config as a dict; `resolution` is None where the source renders at any size.

    Reads the whole file, so a broken one is refused here (ValueError), not mid-study.
    """
    check_kind(kind, path)
    try:
        return _describe(kind, Path(path))
    except (ValueError, FileNotFoundError):
        raise
    except Exception as error:  # noqa: BLE001 - safetensors, onnxruntime and nibabel raise their own types
        raise ValueError(f"{Path(path).name} cannot be read as a {kind} source: {error}") from error


def _describe(kind: str, path: Path) -> dict[str, Any]:
    if kind == "gan":
        from .checkpoints import load_checkpoint

        return load_checkpoint(path).config.to_dict()
    if kind == "onnx":
        import torch

        from .byo import OnnxGenerator

        return OnnxGenerator(path, torch.device("cpu")).config.to_dict()
    from .physics import load_ct

    hu, spacing = load_ct(path)  # reads it through once, so a broken CT is refused at registration
    return {"architecture": "ct-projection", "resolution": None, "num_classes": 0,
            "volume_shape": list(hu.shape), "spacing_mm": list(spacing)}


def check_privacy_screen(path: str | os.PathLike[str]) -> None:
    """Load a privacy screen once, so a broken or missing one is refused at registration (ValueError)."""
    from .privacy import PrivacyScreen

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        PrivacyScreen.load(path)
    except Exception as error:  # noqa: BLE001 - safetensors, json and torch raise their own types
        raise ValueError(f"{path.name} cannot be read as a privacy screen (with its .json beside it): {error}") from error


def open_sampler(kind: str, path: str | os.PathLike[str], *, size: int, device: str | None = None,
                 privacy_screen: str | os.PathLike[str] | None = None):
    """A sampler for the source; `size` is the presentation size (used by renderers of any size)."""
    check_kind(kind, path)
    if kind == "ct":
        if privacy_screen:
            raise ValueError("the privacy screen guards generators trained on patients; a CT renderer has none")
        from .physics import ProjectionSampler

        return ProjectionSampler(path, size)
    from .sampling import Sampler

    return Sampler(path, device=device, privacy_screen=privacy_screen)

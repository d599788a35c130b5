"""Deterministic sampling from a checkpoint, with provenance for every image.

Determinism: each request's latent comes from its own CPU torch.Generator seeded with the
request's seed, so it does not depend on which other requests share the batch or on the
device. The same seed therefore gives bit-identical pixels on a repeat run on the same
device, and (because batched kernels may sum in a different order) pixels within one
grey level (1/255) when the request is batched with others.

Truncation: DCGAN latents are standard normal, whose mean is 0, so truncating towards
the mean latent is simply z * truncation (1 = no truncation, 0 = the mean image).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .checkpoints import checkpoint_sha256, load_checkpoint
from .networks import Generator

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SampleRequest:
    seed: int
    label: int | None = None
    truncation: float = 1.0


@dataclass(frozen=True)
class SampleResult:
    pixels: np.ndarray  # float32 HxW in [0, 1]
    provenance: dict[str, Any]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def latent_for_seed(seed: int, latent_dim: int) -> torch.Tensor:
    """The (latent_dim,) float32 standard-normal latent of a seed, always drawn on CPU."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(latent_dim, generator=generator)


class Sampler:
    """Loads a checkpoint once and turns SampleRequests into images.

    Release and training checkpoints both work (the latter's EMA weights are used).
    Weights are upcast to fp32; the network runs in eval mode under inference_mode.
    """

    max_batch = 64  # requests per forward pass; bounds memory for long request lists

    def __init__(self, checkpoint_path: str | os.PathLike[str], device: str | torch.device | None = None) -> None:
        self.checkpoint_path = Path(checkpoint_path)
        checkpoint = load_checkpoint(self.checkpoint_path)
        self.config = checkpoint.config
        self.device = pick_device(device)
        self.generator = Generator(self.config)
        self.generator.load_state_dict({k: v.float() for k, v in checkpoint.generator.items()})
        self.generator.to(self.device).eval()
        self._provenance = {
            "checkpoint_name": self.checkpoint_path.name,
            "checkpoint_sha256": checkpoint_sha256(self.checkpoint_path),
            "architecture": self.config.architecture,
            "resolution": self.config.resolution,
            "device": str(self.device),
            "generator_version": __version__,
            "torch_version": torch.__version__,
        }

    def sample(self, requests: Sequence[SampleRequest]) -> list[SampleResult]:
        for request in requests:
            self._validate(request)
        results: list[SampleResult] = []
        for start in range(0, len(requests), self.max_batch):
            chunk = requests[start:start + self.max_batch]
            pixels = self._generate(chunk)
            for request, image in zip(chunk, pixels):
                provenance = self._provenance | {
                    "seed": request.seed,
                    "label": request.label,
                    "truncation": float(request.truncation),
                }
                results.append(SampleResult(pixels=image, provenance=provenance))
        return results

    def sample_one(self, seed: int, label: int | None = None, truncation: float = 1.0) -> SampleResult:
        return self.sample([SampleRequest(seed, label, truncation)])[0]

    def _generate(self, requests: Sequence[SampleRequest]) -> np.ndarray:
        z = torch.stack([latent_for_seed(r.seed, self.config.latent_dim) * r.truncation for r in requests])
        labels = None
        if self.config.num_classes:
            labels = torch.tensor([r.label for r in requests], dtype=torch.int64, device=self.device)
        with torch.inference_mode():
            images = self.generator(z.to(self.device), labels)
        return ((images[:, 0].float().cpu().numpy() + 1.0) / 2.0).clip(0.0, 1.0)

    def _validate(self, request: SampleRequest) -> None:
        if isinstance(request.seed, bool) or not isinstance(request.seed, int) or not 0 <= request.seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {request.seed!r}")
        if not (math.isfinite(request.truncation) and 0.0 <= request.truncation <= 1.0):
            raise ValueError(f"truncation must be in [0, 1], got {request.truncation!r}")
        if self.config.num_classes:
            if not isinstance(request.label, int) or not 0 <= request.label < self.config.num_classes:
                raise ValueError(f"label must be an integer in 0..{self.config.num_classes - 1}, got {request.label!r}")
        elif request.label is not None:
            raise ValueError("this checkpoint is unconditional: label must be None")

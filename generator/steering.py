"""Expert steering of a StyleGAN2 checkpoint: interpolation and latent directions.

A `SteeringRequest` starts from a seed's w (its label, its truncation), then optionally
- interpolates towards another seed and/or class (`mix_seed`, `mix_label`, `mix` in [0, 1]);
- moves along a principal direction of w (`pca_component` k, `pca_amount` in standard
  deviations along that component);
- moves along a class-mean difference (`towards_label`, `towards_amount`: 1.0 adds the
  full difference w_avg[towards_label] - w_avg[label], e.g. "this seed, more severe").

Directions come from the model itself: the class averages stored in the checkpoint
(w_avg), and a PCA of the mapping output for PCA_SAMPLES latents drawn from a fixed seed,
computed in fp64 on the CPU with each component's sign fixed (largest entry positive),
so the same checkpoint gives the same directions everywhere. The noise inputs keep the
base seed's key. Every result's provenance records the full request under "steering".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .sampling import SampleResult, Sampler, seed_inputs, to_unit_scale

PCA_SAMPLES = 8192
PCA_SEED = 0


@dataclass(frozen=True)
class SteeringRequest:
    seed: int
    label: int | None = None
    truncation: float = 1.0
    mix_seed: int | None = None
    mix_label: int | None = None
    mix: float = 0.0
    pca_component: int | None = None
    pca_amount: float = 0.0
    towards_label: int | None = None
    towards_amount: float = 0.0


class Steerer:
    """Steered sampling on top of a StyleGAN2 `Sampler` (its device, precision, screen)."""

    def __init__(self, sampler: Sampler, components: int = 16) -> None:
        if not sampler.stylegan:
            raise ValueError("steering needs a StyleGAN2 checkpoint")
        self.sampler = sampler
        self.G = sampler.generator
        self.components = components
        self._pca: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def pca(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean, components (k, dim), standard deviations (k,)) of w, unconditional or over all classes."""
        if self._pca is None:
            config = self.G.config
            generator = torch.Generator().manual_seed(PCA_SEED)
            z = torch.randn(PCA_SAMPLES, config.latent_dim, generator=generator)
            labels = (torch.randint(config.num_classes, (PCA_SAMPLES,), generator=generator)
                      if config.num_classes else None)
            mapping = self.G.mapping.to("cpu")
            with torch.inference_mode():
                w = mapping(z, labels).double()
            self.G.mapping.to(self.sampler.device)
            mean = w.mean(dim=0)
            _, s, vt = torch.linalg.svd(w - mean, full_matrices=False)
            vt = vt[: self.components]
            signs = torch.sign(vt.gather(1, vt.abs().argmax(dim=1, keepdim=True)))
            std = s[: self.components] / np.sqrt(PCA_SAMPLES - 1)
            self._pca = (mean.float(), (vt * signs).float(), std.float())
        return self._pca

    def _w(self, seed: int, label: int | None, truncation: float) -> torch.Tensor:
        z, _ = seed_inputs(seed, self.G.config.latent_dim)
        labels = None if label is None else torch.tensor([label], device=self.sampler.device)
        with torch.inference_mode():
            return self.G.map(z[None].to(self.sampler.device), labels, truncation=truncation)[0].cpu()

    def w_for(self, request: SteeringRequest) -> torch.Tensor:
        self.sampler._validate(request)  # type: ignore[arg-type] - same seed/label/truncation fields
        w = self._w(request.seed, request.label, request.truncation)
        if request.mix:
            other = self._w(request.seed if request.mix_seed is None else request.mix_seed,
                            request.label if request.mix_label is None else request.mix_label, request.truncation)
            w = torch.lerp(w, other, float(request.mix))
        if request.pca_component is not None and request.pca_amount:
            _, components, std = self.pca()
            w = w + request.pca_amount * std[request.pca_component] * components[request.pca_component]
        if request.towards_label is not None and request.towards_amount:
            avg = self.G.w_avg.cpu()
            w = w + request.towards_amount * (avg[request.towards_label] - avg[request.label or 0])
        return w

    def sample(self, requests: Sequence[SteeringRequest]) -> list[SampleResult]:
        ws = torch.stack([self.w_for(r) for r in requests]).to(self.sampler.device)
        keys = torch.tensor([seed_inputs(r.seed, self.G.config.latent_dim)[1] for r in requests],
                            dtype=torch.int64, device=self.sampler.device)
        images = self.sampler.synthesize(ws, keys)
        results = []
        for request, image in zip(requests, to_unit_scale(images)):
            provenance = self.sampler._provenance | {
                "seed": request.seed, "label": request.label, "truncation": float(request.truncation),
                "batch_size": self.sampler.pad_to or min(len(requests), self.sampler.max_batch),
                "steering": asdict(request) | {"pca_samples": PCA_SAMPLES, "pca_seed": PCA_SEED},
            }
            results.append(SampleResult(pixels=image.clip(0.0, 1.0), provenance=provenance, unclipped=image))
        if self.sampler.privacy_screen is not None:
            results = self.sampler._screen(results)
        return results

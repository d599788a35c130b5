"""Frozen, JSON-serialisable configuration for the generator and its training."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

ARCHITECTURES = ("dcgan", "stylegan2")

_T = TypeVar("_T", bound="_JsonConfig")


class _JsonConfig:
    """to_dict/from_dict/JSON helpers shared by both configs.

    from_dict rejects unknown keys so a typo or a newer checkpoint format fails loudly
    instead of silently falling back to defaults.
    """

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_T], data: dict[str, Any]) -> _T:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls: type[_T], text: str) -> _T:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class GeneratorConfig(_JsonConfig):
    """Everything needed to rebuild the networks; stored in every checkpoint.

    Channel widths: the last (full-resolution) stage has `base_width` channels, and each
    halving of resolution doubles it, capped at `max_width`.

    `architecture` picks the networks: "dcgan" (generator/networks.py) or "stylegan2"
    (generator/stylegan2.py). `mapping_layers` is the depth of the StyleGAN2 mapping
    network (z -> w, w has latent_dim features); DCGAN ignores it. Fields added later get
    defaults, so configs stored by older checkpoints still load unchanged.
    """

    architecture: str = "dcgan"
    resolution: int = 128
    latent_dim: int = 128
    base_width: int = 16
    max_width: int = 256
    num_classes: int = 0  # 0 = unconditional
    mapping_layers: int = 8

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        r = self.resolution
        if not (32 <= r <= 1024 and r & (r - 1) == 0):
            raise ValueError(f"resolution must be a power of 2 in 32..1024, got {r}")
        for name in ("latent_dim", "base_width", "max_width", "mapping_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.num_classes < 0:
            raise ValueError("num_classes must be >= 0")


@dataclass(frozen=True)
class TrainingConfig(_JsonConfig):
    """Training hyperparameters; stored in resumable checkpoints."""

    steps: int = 3000
    batch_size: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.99)
    ema_decay: float = 0.995
    r1_gamma: float = 0.1  # R1 gradient penalty on real images; 0 disables
    r1_every: int = 4  # lazy regularisation: apply R1 every N steps, scaled by N
    checkpoint_every: int = 500
    sample_every: int = 500
    seed: int = 0
    release_fp16: bool = True  # halves the release file; sampling upcasts to fp32
    augment: str = ""  # DiffAugment policy, e.g. "translation,cutout,brightness,contrast"; "" = none
    mixed_precision: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    # Fine-tuning a released generator (train(init_from=...)): its new discriminator first learns
    # alone for this many steps, and the EMA starts from the released weights without a warm-up.
    d_warmup_steps: int = 0
    ema_warmup: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "r1_every", "checkpoint_every", "sample_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("ema_decay must be in [0, 1)")
        if len(self.betas) != 2:
            raise ValueError("betas must be a pair")
        unknown = {p for p in self.augment.split(",") if p} - {"translation", "cutout", "brightness", "contrast"}
        if unknown:
            raise ValueError(f"unknown augmentations {sorted(unknown)}")

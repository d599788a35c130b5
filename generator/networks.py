"""DCGAN-class conditional generator and discriminator, sized by a GeneratorConfig.

The generator uses pixel normalisation instead of batch norm: every sample is computed
independently of the rest of the batch (so a seed's image does not depend on its batch
mates) and there are no running statistics for the weight EMA to get out of step with.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import GeneratorConfig


def stage_widths(config: GeneratorConfig) -> list[int]:
    """Channel widths at resolutions 4, 8, ..., config.resolution."""
    stages = int(math.log2(config.resolution)) - 2
    return [min(config.base_width * 2 ** (stages - i), config.max_width) for i in range(stages + 1)]


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit RMS (ProGAN)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class Generator(nn.Module):
    """(z, label) -> 1-channel image in [-1, 1] at config.resolution."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        widths = stage_widths(config)
        in_dim = config.latent_dim
        # Conditioning: a learned label embedding concatenated to z.
        self.embed = nn.Embedding(config.num_classes, config.latent_dim) if config.num_classes else None
        if self.embed is not None:
            in_dim += config.latent_dim
        self.stem = nn.Linear(in_dim, widths[0] * 16)
        blocks: list[nn.Module] = []
        for w_in, w_out in zip(widths, widths[1:]):
            blocks += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1), PixelNorm(), nn.LeakyReLU(0.2)]
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Conv2d(widths[-1], 1, 3, padding=1)
        self.norm = PixelNorm()
        self.act = nn.LeakyReLU(0.2)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is conditional: labels are required")
            z = torch.cat([z, self.embed(labels)], dim=1)
        x = self.stem(z).view(z.shape[0], -1, 4, 4)
        x = self.blocks(self.act(self.norm(x)))
        return torch.tanh(self.to_image(x))


class Discriminator(nn.Module):
    """Image (+ label) -> real/fake logit; conditional via a projection head (Miyato & Koyama 2018)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        widths = stage_widths(config)[::-1]  # full resolution first
        layers: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(w_in, w_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers += [nn.Flatten(), nn.Linear(widths[-1] * 16, widths[-1]), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], 1)
        self.embed = nn.Embedding(config.num_classes, widths[-1]) if config.num_classes else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(images)
        logit = self.head(h).squeeze(1)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: labels are required")
            logit = logit + (self.embed(labels) * h).sum(dim=1)
        return logit


def build_generator(config: GeneratorConfig) -> nn.Module:
    """The generator that config.architecture names."""
    if config.architecture == "stylegan2":
        from .stylegan2 import StyleGAN2Generator

        return StyleGAN2Generator(config)
    return Generator(config)


def build_discriminator(config: GeneratorConfig) -> nn.Module:
    """The discriminator that matches build_generator(config)."""
    if config.architecture == "stylegan2":
        from .stylegan2 import StyleGAN2Discriminator

        return StyleGAN2Discriminator(config)
    return Discriminator(config)

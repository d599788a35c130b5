"""DiffAugment (Zhao et al. 2020) for grayscale images in [-1, 1]: differentiable,
applied to real and generated images alike before the discriminator.

Policies: "translation" (shift by up to 1/8 of the side, zero = mid-grey fill),
"cutout" (a square of half the side set to mid-grey), "brightness" (add U(-0.5, 0.5)),
"contrast" (scale around each image's mean by U(0.5, 1.5)). No colour operations: these
are single-channel radiographs. Every random draw comes from the CPU torch.Generator
passed in, so training stays reproducible and resumable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout", "brightness", "contrast")


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator) -> torch.Tensor:
    for name in (p for p in policy.split(",") if p):
        x = _OPS[name](x, generator)
    return x


def _uniform(generator: torch.Generator, b: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(b, 1, 1, 1, generator=generator).to(device=like.device, dtype=like.dtype)


def _brightness(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x + (_uniform(generator, x.shape[0], x) - 0.5)


def _contrast(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(generator, x.shape[0], x) + 0.5) + mean


def _translation(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (b, 1, 1), generator=generator).to(x.device)
    tx = torch.randint(-sx, sx + 1, (b, 1, 1), generator=generator).to(x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = gy.unsqueeze(0) + ty  # source row for each output pixel (B, H, W), padded by one pixel each side
    gx = gx.unsqueeze(0) + tx
    padded = F.pad(x, (1, 1, 1, 1))
    gy = torch.clamp(gy + 1, 0, h + 1)
    gx = torch.clamp(gx + 1, 0, w + 1)
    flat = padded.flatten(2)  # (B, C, (H+2)(W+2))
    index = (gy * (w + 2) + gx).flatten(1).unsqueeze(1).expand(-1, x.shape[1], -1)
    return flat.gather(2, index).view_as(x)


def _cutout(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h, (b, 1, 1), generator=generator).to(x.device)
    cx = torch.randint(0, w, (b, 1, 1), generator=generator).to(x.device)
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    # DiffAugment's window: a ch x cw square whose centre is uniform over the image.
    inside = ((gy - cy).abs() * 2 < ch) & ((gx - cx).abs() * 2 < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"translation": _translation, "cutout": _cutout, "brightness": _brightness, "contrast": _contrast}

"""Fidelity without downloads: SWD, KID / precision-recall on features we train, and a
classifier two-sample test.

All functions take float images in [0, 1] as an (N, H, W) array or tensor.

- `sliced_wasserstein`: ProGAN's multi-scale statistical similarity (Karras et al. 2018):
  7x7 neighbourhoods drawn from every level of a Laplacian pyramid, each descriptor
  normalised per level, then the sliced Wasserstein distance between the real and the
  synthetic descriptor sets (random unit projections, sorted 1-D distances). Reported
  x1e3 per level (finest first) and averaged, like ProGAN.
- `FeatureNet`: a small convolutional autoencoder trained on the real images (no
  pretrained weights, nothing downloaded); its global-pooled encoder output is the
  feature space for `kid` (unbiased MMD^2 with the cubic polynomial kernel, Binkowski et
  al. 2018) and `precision_recall` (k-NN manifolds, Kynkaanniemi et al. 2019). Also the
  learned feature space of the privacy screen.
- `classifier_two_sample_test`: a small CNN trained to tell real from synthetic on half
  of each set; held-out ROC AUC (0.5: indistinguishable). `evaluate` reports it on whole
  images resized to 64 px (global appearance) and on 64 px crops at full resolution.
  Small and quick, it misses what simple statistics catch: the machine reader proper,
  at the presentation resolution with intervals, is `generator/machine_reader.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WORK_SIZE = 64  # feature net and two-sample classifier see images at this size


def as_tensor(images) -> torch.Tensor:
    """(N, H, W) in [0, 1] -> float32 (N, 1, H, W) tensor."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W) images, got shape {tuple(x.shape)}")
    return x.unsqueeze(1)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="area" if x.shape[-1] > size else "bilinear", align_corners=None)


# ------------------------------------------------------------------------ SWD ---
def _gaussian_down(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    kernel = (k[:, None] * k[None, :]).view(1, 1, 5, 5).to(x)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, stride=2)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Finest first; the last entry is the low-pass residual."""
    pyramid = []
    for _ in range(levels - 1):
        down = _gaussian_down(x)
        up = F.interpolate(down, size=x.shape[-2:], mode="bilinear", align_corners=False)
        pyramid.append(x - up)
        x = down
    pyramid.append(x)
    return pyramid


def _descriptors(level: torch.Tensor, per_image: int, generator: torch.Generator, size: int = 7) -> torch.Tensor:
    """`per_image` random size x size neighbourhoods of every image, as (N * per_image, size**2)."""
    n, _, h, w = level.shape
    ys = torch.randint(0, h - size + 1, (n, per_image, 1, 1), generator=generator)
    xs = torch.randint(0, w - size + 1, (n, per_image, 1, 1), generator=generator)
    offsets = torch.arange(size)
    rows, cols = ys + offsets.view(1, 1, -1, 1), xs + offsets.view(1, 1, 1, -1)
    images = torch.arange(n).view(-1, 1, 1, 1)
    return level[:, 0][images, rows, cols].reshape(-1, size * size)


def _swd(a: torch.Tensor, b: torch.Tensor, projections: int, repeats: int, generator: torch.Generator) -> float:
    results = []
    for _ in range(repeats):
        directions = torch.randn(a.shape[1], projections, generator=generator)
        directions /= directions.norm(dim=0, keepdim=True)
        pa, pb = torch.sort(a @ directions, dim=0).values, torch.sort(b @ directions, dim=0).values
        results.append((pa - pb).abs().mean().item())
    return float(np.mean(results))


def sliced_wasserstein(real, fake, *, levels: int | None = None, per_image: int = 64, projections: int = 512,
                       repeats: int = 2, seed: int = 0) -> dict:
    """ProGAN SWD (x1e3) per Laplacian level, finest first, and their mean."""
    a, b = as_tensor(real), as_tensor(fake)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if levels is None:
        levels = max(1, int(math.log2(a.shape[-1] // 16)) + 1)  # down to 16 px
    generator = torch.Generator().manual_seed(seed)
    per_level = []
    for la, lb in zip(laplacian_pyramid(a, levels), laplacian_pyramid(b, levels)):
        da, db = _descriptors(la, per_image, generator), _descriptors(lb, per_image, generator)
        mean, std = da.mean(dim=0, keepdim=True), da.std(dim=0, keepdim=True) + 1e-8
        per_level.append(1e3 * _swd((da - mean) / std, (db - mean) / std, projections, repeats, generator))
    return {"swd_x1e3_per_level": [round(v, 2) for v in per_level], "swd_x1e3_mean": round(float(np.mean(per_level)), 2),
            "levels_px": [a.shape[-1] >> i for i in range(levels)]}


# -------------------------------------------------------------- feature space ---
class FeatureNet(nn.Module):
    """Conv autoencoder on WORK_SIZE images; `features` = global-pooled encoder output."""

    def __init__(self, width: int = 16, dim: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width * 2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width * 2, width * 4, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width * 4, dim, 4, 2, 1),
        )
        self.decoder = nn.Sequential(
            nn.LeakyReLU(0.2), nn.ConvTranspose2d(dim, width * 4, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width * 2, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    @torch.no_grad()
    def features(self, images, batch: int = 256) -> torch.Tensor:
        """(N, dim) L2-normalised features (mean and max pooled, concatenated)."""
        x = resize(as_tensor(images), WORK_SIZE)
        out = []
        for start in range(0, len(x), batch):
            h = self.encoder(x[start:start + batch] * 2 - 1)
            out.append(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))
        return F.normalize(torch.cat(out), dim=1)


def train_feature_net(real, *, steps: int = 300, batch: int = 32, width: int = 16, dim: int = 64,
                      seed: int = 0) -> FeatureNet:
    """Fit the autoencoder to the real images (with random shifts), deterministically per seed."""
    x = resize(as_tensor(real), WORK_SIZE) * 2 - 1
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FeatureNet(width, dim)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(steps):
        xb = x[torch.randint(len(x), (min(batch, len(x)),), generator=generator)]
        shift = torch.randint(-4, 5, (2,), generator=generator).tolist()
        xb = torch.roll(xb, shifts=shift, dims=(2, 3))
        loss = F.mse_loss(net(xb), xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def kid(real_features: torch.Tensor, fake_features: torch.Tensor, subsets: int = 10, subset_size: int = 100,
        seed: int = 0) -> dict:
    """Kernel (inception-style) distance: unbiased MMD^2, cubic polynomial kernel, mean +- std over subsets."""
    generator = torch.Generator().manual_seed(seed)
    m = min(subset_size, len(real_features), len(fake_features))
    d = real_features.shape[1]
    values = []
    for _ in range(subsets):
        x = real_features[torch.randperm(len(real_features), generator=generator)[:m]].double()
        y = fake_features[torch.randperm(len(fake_features), generator=generator)[:m]].double()
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = 1 - torch.eye(m, dtype=torch.float64)
        values.append(((kxx * off).sum() / (m * (m - 1)) + (kyy * off).sum() / (m * (m - 1)) - 2 * kxy.mean()).item())
    return {"kid": round(float(np.mean(values)), 6), "kid_std": round(float(np.std(values)), 6), "subset_size": m}


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3) -> dict:
    """Improved precision (fake inside the real manifold) and recall (real inside the fake one)."""
    def radii(f: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(f, f)
        return dist.kthvalue(min(k + 1, len(f)), dim=1).values  # +1: the point itself

    r_real, r_fake = radii(real_features), radii(fake_features)
    precision = (torch.cdist(fake_features, real_features) <= r_real[None, :]).any(dim=1).float().mean().item()
    recall = (torch.cdist(real_features, fake_features) <= r_fake[None, :]).any(dim=1).float().mean().item()
    return {"precision": round(precision, 4), "recall": round(recall, 4), "k": k}


# ------------------------------------------------------- two-sample classifier ---
class _Classifier(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
            nn.Conv2d(width * 2, width * 4, 3, padding=1), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Linear(width * 4, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class TwoSampleResult:
    auc: float
    train_size: int
    test_size: int
    steps: int


def classifier_two_sample_test(real, fake, *, steps: int = 300, batch: int = 32, width: int = 16, size: int = WORK_SIZE,
                               crops: bool = False, lr: float = 3e-3, seed: int = 0) -> TwoSampleResult:
    """Train a CNN on half of each set (real = 1, synthetic = 0) and report the held-out AUC.

    Images are resized to `size`, or with crops=True the CNN sees random size x size crops
    at full resolution (fine texture, e.g. quantum noise, survives) and each held-out
    image is scored by the mean logit over a 3 x 3 grid of crops.
    """
    generator = torch.Generator().manual_seed(seed)
    a, b = as_tensor(real) * 2 - 1, as_tensor(fake) * 2 - 1
    if not crops:
        a, b = resize(a, size), resize(b, size)
    n = min(len(a), len(b))
    a, b = a[torch.randperm(len(a), generator=generator)[:n]], b[torch.randperm(len(b), generator=generator)[:n]]
    half = n // 2
    x_train, y_train = torch.cat([a[:half], b[:half]]), torch.cat([torch.ones(half), torch.zeros(half)])
    x_test, y_test = torch.cat([a[half:], b[half:]]), torch.cat([torch.ones(n - half), torch.zeros(n - half)])
    side = x_train.shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _Classifier(width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        index = torch.randint(len(x_train), (min(batch, len(x_train)),), generator=generator)
        xb = x_train[index]
        if crops and side > size:
            top, left = torch.randint(0, side - size + 1, (2,), generator=generator).tolist()
            xb = xb[..., top:top + size, left:left + size]
        loss = F.binary_cross_entropy_with_logits(net(xb), y_train[index])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        net.eval()
        if crops and side > size:
            starts = np.linspace(0, side - size, 3).round().astype(int).tolist()
            scores = torch.stack([net(x_test[..., t:t + size, l:l + size]) for t in starts for l in starts]).mean(0)
        else:
            scores = net(x_test)
    return TwoSampleResult(auc=round(roc_auc(scores.numpy(), y_test.numpy()), 4), train_size=2 * half,
                           test_size=len(x_test), steps=steps)


def evaluate(real, fake, *, feature_steps: int = 300, c2st_steps: int = 300, seed: int = 0) -> dict:
    """All fidelity figures for two image sets."""
    net = train_feature_net(real, steps=feature_steps, seed=seed)
    fr, ff = net.features(real), net.features(fake)
    c2st = classifier_two_sample_test(real, fake, steps=c2st_steps, seed=seed)
    c2st_crops = classifier_two_sample_test(real, fake, steps=c2st_steps, crops=True, seed=seed)
    return {
        "images": {"real": len(real), "synthetic": len(fake)},
        "swd": sliced_wasserstein(real, fake, seed=seed),
        "kid": kid(fr, ff, seed=seed),
        "precision_recall": precision_recall(fr, ff),
        "two_sample_auc": c2st.auc,
        "two_sample_auc_full_resolution_crops": c2st_crops.auc,
        "two_sample": {"train": c2st.train_size, "test": c2st.test_size, "steps": c2st.steps, "size": WORK_SIZE},
    }

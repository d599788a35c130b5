"""The machine reader: how well the pixels alone tell synthetic images from real ones.

Works at the presentation resolution on the full-precision (16-bit) pixels, with every
figure held out (each image is scored by a model that never saw it):

(a) hand-made statistics of each image (`STATISTICS`: noise estimates, noise power
    spectrum bands, grey-level histogram and extremes, gradient and Laplacian energy).
    Each statistic gets its own AUC, its direction (higher or lower in synthetic images)
    chosen on the training folds only; "best single statistic" picks the statistic inside
    each training fold as well, so its AUC carries no selection bias; and a logistic
    regression on all of them is cross-validated (`folds`-fold, stratified).
(b) a learned two-sample classifier (a small CNN fed the image and its high-pass
    residual) on whole images at full presentation resolution, and one trained on
    full-resolution crops (texture and noise), both cross-fitted on two halves.

The machine reader's AUC is the strongest of the four held-out methods (best single
statistic, statistics classifier, CNN on whole images, CNN on crops), named in the result
with the statistics that drive it. Picking the strongest of four inflates the headline a
little under the null (two halves of one real set read about 0.5-0.56 at n = 200 + 200;
`tests/test_generator_machine_reader.py`). Intervals are DeLong's standard error on the
logit scale. AUC 0.5: the machine cannot tell them apart; 1: it always can.

Synthetic is the positive class: every score is the held-out probability that an image is
synthetic. Never imports Django (the site calls `machine_read` on a study's images).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import convolve
from scipy.stats import norm, rankdata
from torch import nn

# name -> what it is, for reports. Order is the column order of `image_statistics`.
STATISTICS: dict[str, str] = {
    "noise_immerkaer": "noise estimate (Immerkær: mean |second-difference Laplacian|)",
    "noise_mad_wavelet": "noise estimate (median |diagonal Haar detail| / 0.6745)",
    "nps_band_1": "noise power spectrum, 1/64-1/32 cycles/px (log)",
    "nps_band_2": "noise power spectrum, 1/32-1/16 cycles/px (log)",
    "nps_band_3": "noise power spectrum, 1/16-1/8 cycles/px (log)",
    "nps_band_4": "noise power spectrum, 1/8-1/4 cycles/px (log)",
    "nps_band_5": "noise power spectrum, above 1/4 cycles/px (log)",
    "grey_mean": "grey level mean",
    "grey_std": "grey level standard deviation",
    "grey_p0_1": "grey level 0.1st percentile",
    "grey_p1": "grey level 1st percentile",
    "grey_p50": "grey level median",
    "grey_p99": "grey level 99th percentile",
    "grey_p99_9": "grey level 99.9th percentile",
    "grey_min": "darkest grey level",
    "grey_max": "brightest grey level",
    "clip_low": "fraction of pixels at the darkest level",
    "clip_high": "fraction of pixels at the brightest level",
    "histogram_entropy": "entropy of the 256-bin grey-level histogram (bits)",
    "levels_used": "distinct 16-bit grey levels per pixel",
    "on_8bit_grid": "fraction of pixels on the 8-bit grid (multiples of 257)",
    "gradient_energy": "gradient energy, mean squared first difference (log)",
    "laplacian_energy": "Laplacian energy, mean squared 4-neighbour Laplacian (log)",
    "laplacian_to_gradient": "Laplacian energy over gradient energy (log): sharpness",
}
METHODS = {
    "best_statistic": "best single statistic (chosen inside each training fold)",
    "statistics_classifier": "logistic regression on all statistics (cross-validated)",
    "cnn_whole": "CNN on whole images at full presentation resolution (cross-fitted halves)",
    "cnn_crops": "CNN on full-resolution crops (cross-fitted halves)",
}
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
_NPS_EDGES = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, math.inf)
_TINY = 1e-20


# ----------------------------------------------------------------- statistics ---
def _radial_bands(size_y: int, size_x: int) -> list[np.ndarray]:
    fy, fx = np.meshgrid(np.fft.fftfreq(size_y), np.fft.rfftfreq(size_x), indexing="ij")
    radius = np.hypot(fy, fx)
    return [(radius >= lo) & (radius < hi) for lo, hi in zip(_NPS_EDGES[:-1], _NPS_EDGES[1:])]


def _one_image(x: np.ndarray, bands: list[np.ndarray], window: np.ndarray) -> list[float]:
    levels = np.rint(x * 65535.0).astype(np.int64)
    h, w = x.shape
    immerkaer = np.abs(convolve(x, _IMMERKAER, mode="reflect"))[1:-1, 1:-1].sum()
    noise = math.sqrt(math.pi / 2) * immerkaer / (6.0 * (w - 2) * (h - 2))
    even = x[: h // 2 * 2, : w // 2 * 2]
    diagonal = (even[0::2, 0::2] - even[0::2, 1::2] - even[1::2, 0::2] + even[1::2, 1::2]) / 2
    noise_mad = float(np.median(np.abs(diagonal))) / 0.6745
    power = np.abs(np.fft.rfft2((x - x.mean()) * window)) ** 2 / window.size
    # A band a small image has no frequency in reads 0 for every image: no information, no NaN.
    nps = [math.log10(float(power[band].mean()) + _TINY) if band.any() else 0.0 for band in bands]
    percentiles = np.percentile(x, [0.1, 1, 50, 99, 99.9])
    lo, hi = levels.min(), levels.max()
    counts = np.histogram(x, bins=256, range=(0.0, 1.0))[0] / x.size
    entropy = float(-(counts[counts > 0] * np.log2(counts[counts > 0])).sum())
    gx, gy = np.diff(x, axis=1), np.diff(x, axis=0)
    gradient = (np.mean(gx ** 2) + np.mean(gy ** 2)) / 2
    laplacian = np.mean((x[1:-1, :-2] + x[1:-1, 2:] + x[:-2, 1:-1] + x[2:, 1:-1] - 4 * x[1:-1, 1:-1]) ** 2)
    return [
        noise, noise_mad, *nps, float(x.mean()), float(x.std()), *map(float, percentiles), lo / 65535.0,
        hi / 65535.0, float(np.mean(levels == lo)), float(np.mean(levels == hi)), entropy,
        len(np.unique(levels)) / levels.size, float(np.mean(levels % 257 == 0)),
        math.log(gradient + _TINY), math.log(laplacian + _TINY), math.log((laplacian + _TINY) / (gradient + _TINY)),
    ]


def image_statistics(images) -> np.ndarray:
    """(N, len(STATISTICS)) statistics of (N, H, W) images in [0, 1] (float64)."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[1] < 8 or images.shape[2] < 8:
        raise ValueError(f"expected (N, H, W) images of at least 8 x 8 pixels, got shape {images.shape}")
    h, w = images.shape[1:]
    bands = _radial_bands(h, w)
    window = np.outer(np.hanning(h), np.hanning(w))
    return np.array([_one_image(x, bands, window) for x in images], dtype=np.float64).reshape(len(images), -1)


# ------------------------------------------------------------------- AUC, CI ---
def auc_with_interval(scores, labels, level: float = 0.95) -> dict:
    """ROC AUC (synthetic = 1 is the positive class) with DeLong's SE and a logit-scale interval.

    Where every synthetic image scores above every real one (AUC 1) DeLong's SE is 0 and
    the interval is the point [1, 1]: the sets are separated, and n says how firmly."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    pos, neg = scores[labels], scores[~labels]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        raise ValueError(f"an AUC needs at least 2 real and 2 synthetic images, got {n} and {m}")
    ranks_all = rankdata(np.concatenate([pos, neg]))
    auc = (ranks_all[:m].sum() - m * (m + 1) / 2) / (m * n)
    # DeLong's structural components from within-group ranks (Sun and Xu 2014).
    v10 = (ranks_all[:m] - rankdata(pos)) / n
    v01 = 1.0 - (ranks_all[m:] - rankdata(neg)) / m
    se = math.sqrt(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    z = norm.ppf(0.5 + level / 2)
    if 0.0 < auc < 1.0 and se > 0:
        logit, logit_se = math.log(auc / (1 - auc)), se / (auc * (1 - auc))
        ci = [1 / (1 + math.exp(-(logit - z * logit_se))), 1 / (1 + math.exp(-(logit + z * logit_se)))]
    else:  # all or nothing separated: the logit is infinite; report the plain Wald bound
        ci = [max(0.0, auc - z * se), min(1.0, auc + z * se)]
    return {"auc": float(auc), "se": float(se), "ci": [float(c) for c in ci], "level": level,
            "n_real": n, "n_synthetic": m}


def _folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number per image, stratified by label, drawn from `seed`."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for value in (0, 1):
        where = np.flatnonzero(labels == value)
        fold[rng.permutation(where)] = np.arange(len(where)) % folds
    return fold


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    ranks = rankdata(scores)
    m = labels.sum()
    return float((ranks[labels == 1].sum() - m * (m + 1) / 2) / (m * (len(labels) - m)))


def _logistic(features: np.ndarray, labels: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)).fit(features, labels)


# --------------------------------------------------------- statistics methods ---
def _statistics_methods(features: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> dict:
    names = list(STATISTICS)
    fold = _folds(labels, folds, seed)
    oriented = np.zeros_like(features)  # each statistic's held-out score, direction from training folds
    best_scores, classifier_scores = np.zeros(len(labels)), np.zeros(len(labels))
    chosen = []
    for k in range(folds):
        train, test = fold != k, fold == k
        train_aucs = np.array([_auc(features[train, j], labels[train]) for j in range(len(names))])
        signs = np.where(train_aucs >= 0.5, 1.0, -1.0)
        oriented[test] = features[test] * signs
        best = int(np.argmax(np.abs(train_aucs - 0.5)))
        chosen.append(names[best])
        best_scores[test] = _logistic(features[train][:, [best]], labels[train]).predict_proba(features[test][:, [best]])[:, 1]
        classifier_scores[test] = _logistic(features[train], labels[train]).predict_proba(features[test])[:, 1]

    per_statistic = []
    for j, name in enumerate(names):
        figures = auc_with_interval(oriented[:, j], labels)
        full = _auc(features[:, j], labels)
        per_statistic.append({"statistic": name, "description": STATISTICS[name], **figures,
                              "direction": "higher in synthetic" if full >= 0.5 else "lower in synthetic",
                              "mean_real": float(features[labels == 0, j].mean()),
                              "mean_synthetic": float(features[labels == 1, j].mean())})
    per_statistic.sort(key=lambda s: -s["auc"])

    fitted = _logistic(features, labels)
    coefficients = fitted[-1].coef_[0]
    order = np.argsort(-np.abs(coefficients))[:3]
    drivers = [{"statistic": names[j], "standardised_coefficient": float(coefficients[j])} for j in order]
    most_chosen, times = Counter(chosen).most_common(1)[0]
    return {
        "per_statistic": per_statistic,
        "best_statistic": {"method": "best_statistic", "description": METHODS["best_statistic"],
                           **auc_with_interval(best_scores, labels), "driver": most_chosen,
                           "driver_description": STATISTICS[most_chosen], "chosen_in_folds": f"{times} of {folds}",
                           "scores": best_scores},
        "statistics_classifier": {"method": "statistics_classifier", "description": METHODS["statistics_classifier"],
                                  **auc_with_interval(classifier_scores, labels), "driver": names[order[0]],
                                  "driver_description": STATISTICS[names[order[0]]], "drivers": drivers,
                                  "folds": folds, "scores": classifier_scores},
    }


# ---------------------------------------------------------- learned classifier ---
class TwoSampleCNN(nn.Module):
    """Image + high-pass residual in; real/synthetic logit out.

    `whole=True` (whole images at full presentation resolution): a 4 x 4 stride-4 patch
    layer takes in every pixel (nothing is resized, so quantum noise and fine texture
    reach the network) at a sixteenth of the cost of a full-resolution convolution, and a
    4 x 4 grid of pooled features keeps the global layout (pose, exposure, shape).
    `whole=False` (full-resolution crops): a 3 x 3 convolution at full resolution and
    global pooling: texture only, any input size."""

    def __init__(self, width: int = 8, whole: bool = False) -> None:
        super().__init__()
        stem = nn.Conv2d(2, width * 2, 4, stride=4) if whole else nn.Conv2d(2, width, 3, padding=1)
        first = width * 2 if whole else width
        self.features = nn.Sequential(
            stem, nn.LeakyReLU(0.2),
            nn.Conv2d(first, width * 2, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width * 2, width * 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width * 4, width * 4, 3, stride=2 if not whole else 1, padding=1), nn.LeakyReLU(0.2),
        )
        self.pool = nn.AdaptiveAvgPool2d(4 if whole else 1)
        self.head = nn.Linear(width * 4 * (16 if whole else 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1)).squeeze(1)


def _two_channels(images: np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1)
    residual = x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return torch.cat([x * 2 - 1, residual / (residual.std() + 1e-12)], dim=1)


def _train_cnn(x: torch.Tensor, y: torch.Tensor, *, crop: int | None, steps: int, batch: int, width: int,
               seed: int) -> TwoSampleCNN:
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TwoSampleCNN(width, whole=crop is None)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    side = x.shape[-1]
    for _ in range(steps):
        index = torch.randint(len(x), (min(batch, len(x)),), generator=generator)
        xb = x[index]
        if crop is not None and side > crop:
            top, left = torch.randint(0, side - crop + 1, (2,), generator=generator).tolist()
            xb = xb[..., top:top + crop, left:left + crop]
        if torch.rand((), generator=generator) < 0.5:  # radiographs may be mirrored: learn nothing from sides
            xb = xb.flip(-1)
        loss = F.binary_cross_entropy_with_logits(net(xb), y[index])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def _score(net: TwoSampleCNN, x: torch.Tensor, batch: int = 64) -> np.ndarray:
    return torch.cat([torch.sigmoid(net(x[i:i + batch])) for i in range(0, len(x), batch)]).numpy().astype(np.float64)


def _cnn_method(images: np.ndarray, labels: np.ndarray, *, crop: int | None, steps: int, batch: int, width: int,
                seed: int) -> dict:
    """Cross-fitted on two stratified halves: every image scored by the network trained on the other half."""
    x, y = _two_channels(images), torch.as_tensor(labels, dtype=torch.float32)
    half = _folds(labels, 2, seed + 1)
    scores = np.zeros(len(labels))
    for k in (0, 1):
        train, test = torch.as_tensor(half != k), half == k
        net = _train_cnn(x[train], y[train], crop=crop, steps=steps, batch=batch, width=width, seed=seed + k)
        held_out = _score(net, x[torch.as_tensor(test)])
        # Each half's network has its own calibration: put both on one scale (ranks within the half).
        scores[test] = (rankdata(held_out) - 0.5) / len(held_out)
    key = "cnn_whole" if crop is None else "cnn_crops"
    size = images.shape[-1] if crop is None else min(crop, images.shape[-1])
    return {"method": key, "description": METHODS[key], **auc_with_interval(scores, labels),
            "input_px": size, "steps": steps, "batch": batch, "scores": scores}


# --------------------------------------------------------------------- reader ---
@dataclass(frozen=True)
class MachineReading:
    """The figures (JSON-ready, full precision) and each image's held-out P(synthetic) by the headline method."""

    figures: dict
    real_scores: np.ndarray
    synthetic_scores: np.ndarray


def machine_read(real, synthetic, *, folds: int = 5, learned: bool = True, steps: int = 300, batch: int = 16,
                 crop: int = 64, width: int = 8, seed: int = 0) -> MachineReading:
    """Every method on (N, H, W) images in [0, 1] of the same size; the strongest is the headline."""
    real, synthetic = np.asarray(real, dtype=np.float32), np.asarray(synthetic, dtype=np.float32)
    if real.ndim != 3 or synthetic.ndim != 3 or real.shape[1:] != synthetic.shape[1:]:
        raise ValueError(f"real and synthetic images must be (N, H, W) of one size, got {real.shape} and {synthetic.shape}")
    folds = min(folds, len(real), len(synthetic))
    if folds < 2:
        raise ValueError(f"the machine reader needs at least 2 real and 2 synthetic images, got {len(real)} and {len(synthetic)}")
    images = np.concatenate([real, synthetic])
    labels = np.concatenate([np.zeros(len(real), dtype=np.int64), np.ones(len(synthetic), dtype=np.int64)])
    stats = _statistics_methods(image_statistics(images), labels, folds, seed)
    methods = [stats["best_statistic"], stats["statistics_classifier"]]
    if learned and min(len(real), len(synthetic)) >= 4:
        methods.append(_cnn_method(images, labels, crop=None, steps=steps, batch=batch, width=width, seed=seed))
        methods.append(_cnn_method(images, labels, crop=crop, steps=steps, batch=batch, width=width, seed=seed))
    strongest = max(methods, key=lambda m: m["auc"])
    public = [{k: v for k, v in m.items() if k != "scores"} for m in methods]
    headline = {k: v for k, v in strongest.items() if k not in ("scores", "drivers")}
    if strongest["method"] in ("cnn_whole", "cnn_crops"):
        headline["driver"], headline["driver_description"] = strongest["method"], strongest["description"]
    figures = {
        "auc": strongest["auc"], "ci": strongest["ci"], "level": strongest["level"], "method": strongest["method"],
        "method_description": strongest["description"], "driver": headline["driver"],
        "driver_description": headline["driver_description"],
        "n_real": len(real), "n_synthetic": len(synthetic), "resolution": list(real.shape[1:]),
        "methods": public, "statistics": stats["per_statistic"],
        "note": "strongest of the held-out methods; 0.5 = the pixels do not tell synthetic from real",
    }
    scores = strongest["scores"]
    return MachineReading(figures, scores[: len(real)].copy(), scores[len(real):].copy())


def summary_line(figures: dict) -> str:
    lo, hi = figures["ci"]
    return (f"machine reader AUC {figures['auc']:.3f} ({int(figures['level'] * 100)}% CI {lo:.3f}-{hi:.3f}), "
            f"{figures['method_description']}; driven by {figures['driver_description']}; "
            f"n = {figures['n_real']} real + {figures['n_synthetic']} synthetic at {figures['resolution'][0]} px")

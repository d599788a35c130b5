"""Privacy screen: refuse synthetic images that are too close to a training image.

For a candidate image, two nearest-neighbour similarities to the training set:
- pixel space: normalised cross-correlation (cosine of the mean-centred images) at
  PIXEL_SIZE x PIXEL_SIZE;
- learned feature space: cosine similarity of generator.metrics.FeatureNet features
  (an autoencoder trained on the training images; no downloads).

Calibration: the same similarities are computed for held-out real images (images of
other patients, never trained on) against the training set; each space's threshold is
a high quantile (default 0.99) of those, i.e. a low quantile of the held-out distances.
An image is refused when either similarity exceeds its threshold: it is closer to a
training image than almost every genuinely new image is. `check` returns (ok, score)
with score = the larger of similarity / threshold over the two spaces (refused when
score > 1, `threshold` is 1.0).

Files, saved next to the checkpoint: `<name>.safetensors` (the training set's pixel
vectors and features, fp16, and the feature net's weights) and `<name>.json` (the
thresholds, quantile, counts and the held-out similarity summary).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from .metrics import FeatureNet, as_tensor, resize, train_feature_net

PIXEL_SIZE = 32
FORMAT = "readerstudy-privacy-screen"


def pixel_vectors(images) -> torch.Tensor:
    x = resize(as_tensor(images), PIXEL_SIZE).flatten(1)
    return F.normalize(x - x.mean(dim=1, keepdim=True), dim=1)


@dataclass
class PrivacyScreen:
    train_pixels: torch.Tensor  # (N, PIXEL_SIZE**2), unit rows
    train_features: torch.Tensor  # (N, D), unit rows
    net: FeatureNet
    pixel_threshold: float
    feature_threshold: float
    info: dict = field(default_factory=dict)
    threshold: float = 1.0
    checked: int = 0
    refused: int = 0

    @classmethod
    def build(cls, train_images, heldout_images, *, quantile: float = 0.99, feature_steps: int = 300,
              seed: int = 0) -> PrivacyScreen:
        net = train_feature_net(train_images, steps=feature_steps, seed=seed)
        screen = cls(pixel_vectors(train_images), net.features(train_images), net, 1.0, 1.0)
        pix, feat = screen.similarities(heldout_images)
        screen.pixel_threshold = float(np.quantile(pix, quantile))
        screen.feature_threshold = float(np.quantile(feat, quantile))
        screen.info = {
            "quantile": quantile, "train_images": len(train_images), "heldout_images": len(heldout_images),
            "pixel_size": PIXEL_SIZE, "feature_steps": feature_steps, "seed": seed,
            "heldout_pixel_similarity": _summary(pix), "heldout_feature_similarity": _summary(feat),
        }
        return screen

    def similarities(self, images) -> tuple[np.ndarray, np.ndarray]:
        """Each image's nearest-neighbour similarity to the training set, per space."""
        pix = (pixel_vectors(images) @ self.train_pixels.float().T).amax(dim=1)
        feat = (self.net.features(images) @ self.train_features.float().T).amax(dim=1)
        return pix.numpy(), feat.numpy()

    def scores(self, images) -> np.ndarray:
        pix, feat = self.similarities(images)
        return np.maximum(pix / self.pixel_threshold, feat / self.feature_threshold)

    def check(self, pixels: np.ndarray) -> tuple[bool, float]:
        """(ok, score) for one HxW image in [0, 1]; counts checks and refusals."""
        score = float(self.scores(np.asarray(pixels, dtype=np.float32)[None])[0])
        ok = score <= self.threshold
        self.checked += 1
        self.refused += not ok
        return ok, score

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"train_pixels": self.train_pixels.half().contiguous(),
                   "train_features": self.train_features.half().contiguous()}
        tensors |= {f"net/{k}": v.contiguous() for k, v in self.net.state_dict().items()}
        save_file(tensors, str(path), metadata={"format": FORMAT})
        os.chmod(path, 0o644)
        meta = {"format": FORMAT, "pixel_threshold": self.pixel_threshold, "feature_threshold": self.feature_threshold,
                "feature_dim": self.train_features.shape[1] // 2, **self.info}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PrivacyScreen:
        """Load `<name>.safetensors` (+ `<name>.json`); never unpickles."""
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("format") != FORMAT:
                raise ValueError(f"{path.name} is not a {FORMAT} file")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        net_state = {k[4:]: v for k, v in tensors.items() if k.startswith("net/")}
        width = net_state["encoder.0.weight"].shape[0]
        net = FeatureNet(width=width, dim=net_state["encoder.6.weight"].shape[0])
        net.load_state_dict(net_state)
        return cls(tensors["train_pixels"].float(), tensors["train_features"].float(), net.eval(),
                   float(meta["pixel_threshold"]), float(meta["feature_threshold"]),
                   info={k: v for k, v in meta.items() if k not in ("pixel_threshold", "feature_threshold")})


def _summary(values: np.ndarray) -> dict:
    return {"min": round(float(values.min()), 5), "median": round(float(np.median(values)), 5),
            "max": round(float(values.max()), 5)}

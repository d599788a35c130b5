"""Fidelity metrics: SWD, KID, precision/recall and the classifier two-sample test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from generator.metrics import (
    classifier_two_sample_test,
    kid,
    laplacian_pyramid,
    precision_recall,
    roc_auc,
    sliced_wasserstein,
    train_feature_net,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def radiograph_like(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth random anatomy plus quantum-like noise: fine texture that blurring removes."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 4, 4))
    smooth = np.stack([np.kron(c, np.ones((size // 4, size // 4))) for c in coarse])
    smooth = uniform_filter(smooth, size=(1, 7, 7))
    return np.clip(0.2 + 0.6 * smooth + rng.normal(0, 0.06, smooth.shape), 0, 1).astype(np.float32)


REAL = radiograph_like(160)


def test_auc_helper():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([0, 1])) == 0.5


def test_two_halves_of_the_real_set_are_indistinguishable():
    result = classifier_two_sample_test(REAL[:80], REAL[80:], steps=150, size=32, width=8)
    assert abs(result.auc - 0.5) < 0.15 and result.test_size == 80


def test_blurred_images_are_told_apart():
    blurred = uniform_filter(REAL[80:], size=(1, 3, 3))
    result = classifier_two_sample_test(REAL[:80], blurred, steps=150, size=32, width=8)
    assert result.auc > 0.95


def test_swd_is_small_for_same_distribution_and_larger_for_blur():
    pyramid = laplacian_pyramid(torch.as_tensor(REAL[:4]).unsqueeze(1), 2)
    assert [p.shape[-1] for p in pyramid] == [32, 16]
    same = sliced_wasserstein(REAL[:80], REAL[80:], per_image=32, projections=64, repeats=1)
    blurred = sliced_wasserstein(REAL[:80], uniform_filter(REAL[80:], size=(1, 3, 3)), per_image=32, projections=64,
                                 repeats=1)
    assert len(same["swd_x1e3_per_level"]) == 2
    assert blurred["swd_x1e3_mean"] > 2 * same["swd_x1e3_mean"]


def test_kid_and_precision_recall_on_learned_features():
    net = train_feature_net(REAL[:80], steps=40, width=8, dim=16)
    a, b = net.features(REAL[:80]), net.features(REAL[80:])
    c = net.features(np.clip(REAL[80:] * 0.3 + 0.6, 0, 1))  # washed out: off the real manifold
    assert a.shape == (80, 32)
    assert kid(a, b, subset_size=50)["kid"] < kid(a, c, subset_size=50)["kid"]
    same, off = precision_recall(a, b), precision_recall(a, c)
    assert same["precision"] > off["precision"] and same["recall"] > 0.5


def test_evaluate_cli(tmp_path, capsys):
    import json

    from PIL import Image

    from generator.__main__ import main
    from generator.checkpoints import save_checkpoint
    from generator.config import GeneratorConfig
    from generator.networks import build_generator

    config = GeneratorConfig(architecture="stylegan2", resolution=32, latent_dim=16, base_width=4, max_width=16,
                             mapping_layers=2)
    checkpoint = save_checkpoint(tmp_path / "g.safetensors", config, build_generator(config).state_dict())
    (tmp_path / "real").mkdir()
    for i, image in enumerate(REAL[:24]):
        Image.fromarray((image * 65535).astype(np.uint16)).save(tmp_path / "real" / f"{i}.png")
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--real", str(tmp_path / "real"), "--count", "24",
                 "--steps", "20", "--reader-steps", "10", "--device", "cpu", "--json", str(tmp_path / "f.json")]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) >= {"swd", "kid", "precision_recall", "two_sample_auc"}
    assert json.loads((tmp_path / "f.json").read_text()) == figures


def test_full_resolution_crops_see_texture():
    big = radiograph_like(80, size=64, seed=3)
    blurred = uniform_filter(big[40:], size=(1, 3, 3))
    result = classifier_two_sample_test(big[:40], blurred, steps=100, size=32, width=8, crops=True)
    assert result.auc > 0.9

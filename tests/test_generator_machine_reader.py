"""The machine reader: planted differences are found, two halves of one real set are not."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, uniform_filter

from generator.machine_reader import STATISTICS, auc_with_interval, image_statistics, machine_read, summary_line
from generator.metrics import roc_auc

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def radiograph_like(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    """Smooth random anatomy plus quantum-like noise, on the 16-bit grid."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 4, 4))
    smooth = np.stack([np.kron(c, np.ones((size // 4, size // 4))) for c in coarse])
    smooth = uniform_filter(smooth, size=(1, 9, 9))
    pixels = np.clip(0.2 + 0.6 * smooth + rng.normal(0, 0.03, smooth.shape), 0, 1)
    return (np.rint(pixels * 65535) / 65535).astype(np.float32)


REAL = radiograph_like(240)
FIRST, SECOND = REAL[:120], REAL[120:]


def statistics_methods(real, synthetic) -> dict:
    figures = machine_read(real, synthetic, learned=False).figures
    return {m["method"]: m for m in figures["methods"]} | {"headline": figures}


@pytest.mark.parametrize("planted, drivers", [
    (lambda x: gaussian_filter(x, (0, 0.8, 0.8)), {"noise_immerkaer", "noise_mad_wavelet", "laplacian_energy",
                                                   "nps_band_5", "gradient_energy", "laplacian_to_gradient"}),
    (lambda x: np.clip(x + np.random.default_rng(5).normal(0, 0.01, x.shape), 0, 1),
     {"noise_immerkaer", "noise_mad_wavelet", "laplacian_energy", "nps_band_5", "gradient_energy"}),
    (lambda x: np.rint(x * 255) / 255, {"levels_used", "on_8bit_grid"}),
], ids=["blur", "noise", "8-bit quantisation"])
def test_statistics_find_a_planted_difference(planted, drivers):
    methods = statistics_methods(FIRST, planted(SECOND))
    assert methods["best_statistic"]["auc"] > 0.95
    assert methods["statistics_classifier"]["auc"] > 0.95
    assert methods["headline"]["auc"] > 0.95
    assert methods["headline"]["driver"] in drivers
    assert methods["headline"]["ci"][0] > 0.85


def test_two_halves_of_the_real_set_read_as_chance():
    methods = statistics_methods(FIRST, SECOND)
    for key in ("best_statistic", "statistics_classifier"):
        assert abs(methods[key]["auc"] - 0.5) < 0.1, methods[key]
        low, high = methods[key]["ci"]
        assert low < 0.5 < high
    # The strongest single statistic, even oriented on the training folds, stays near chance.
    assert max(s["auc"] for s in methods["headline"]["statistics"]) < 0.66


def test_each_statistic_is_reported_with_its_direction():
    figures = machine_read(FIRST, gaussian_filter(SECOND, (0, 0.8, 0.8)), learned=False).figures
    assert {s["statistic"] for s in figures["statistics"]} == set(STATISTICS)
    noise = next(s for s in figures["statistics"] if s["statistic"] == "noise_immerkaer")
    assert noise["direction"] == "lower in synthetic" and noise["mean_synthetic"] < noise["mean_real"]
    json.dumps(figures)  # machine output: plain JSON, full precision


def test_noise_estimate_measures_added_noise():
    flat = np.full((3, 64, 64), 0.5) + np.random.default_rng(0).normal(0, [[[0.01]], [[0.02]], [[0.04]]], (3, 64, 64))
    noise = image_statistics(flat)[:, list(STATISTICS).index("noise_immerkaer")]
    np.testing.assert_allclose(noise, [0.01, 0.02, 0.04], rtol=0.05)


def test_auc_interval_is_delong():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], [30, 40])
    scores = rng.normal(size=70) + labels * 0.8
    scores[:5] = scores[40:45]  # ties across the groups
    result = auc_with_interval(scores, labels)
    assert result["auc"] == pytest.approx(roc_auc(scores, labels))
    pos, neg = scores[labels == 1], scores[labels == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])  # the O(mn) definition
    se = np.sqrt(psi.mean(1).var(ddof=1) / len(pos) + psi.mean(0).var(ddof=1) / len(neg))
    assert result["se"] == pytest.approx(se)
    assert result["ci"][0] < result["auc"] < result["ci"][1]


def test_learned_classifier_sees_full_resolution_texture():
    real = radiograph_like(48, size=32, seed=3)
    reading = machine_read(real[:24], gaussian_filter(real[24:], (0, 1, 1)), steps=80, crop=16)
    by_method = {m["method"]: m for m in reading.figures["methods"]}
    assert by_method["cnn_crops"]["auc"] > 0.9 and by_method["cnn_crops"]["input_px"] == 16
    assert by_method["cnn_whole"]["input_px"] == 32
    assert len(reading.real_scores) == 24 and len(reading.synthetic_scores) == 24
    assert reading.synthetic_scores.mean() > reading.real_scores.mean()
    assert "machine reader AUC" in summary_line(reading.figures)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="one size"):
        machine_read(FIRST[:10], FIRST[:10, :32, :32])
    with pytest.raises(ValueError, match="at least 2 real and 2 synthetic"):
        machine_read(FIRST[:1], SECOND[:10])


def test_evaluate_cli_names_the_machine_readers_method(tmp_path, capsys):
    from PIL import Image

    from generator.__main__ import main
    from generator.checkpoints import save_checkpoint
    from generator.config import GeneratorConfig
    from generator.networks import build_generator

    config = GeneratorConfig(architecture="stylegan2", resolution=32, latent_dim=16, base_width=4, max_width=16,
                             mapping_layers=2)
    checkpoint = save_checkpoint(tmp_path / "g.safetensors", config, build_generator(config).state_dict())
    (tmp_path / "real").mkdir()
    for i, image in enumerate(radiograph_like(24, size=32)):
        Image.fromarray(np.rint(image * 65535).astype(np.uint16)).save(tmp_path / "real" / f"{i}.png")
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--real", str(tmp_path / "real"), "--count", "24",
                 "--steps", "20", "--reader-steps", "10", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    reader = json.loads(out)["machine_reader"]
    # An untrained generator is trivially told apart, and the method that does it is named.
    assert reader["auc"] > 0.9
    assert reader["method"] in {"best_statistic", "statistics_classifier", "cnn_whole", "cnn_crops"}
    assert reader["driver"] and reader["n_real"] == 24 and reader["n_synthetic"] == 24
    assert "machine reader AUC" in err

"""Sampler determinism, batching, truncation, labels and provenance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator import __version__
from generator.checkpoints import checkpoint_sha256, save_checkpoint
from generator.config import GeneratorConfig
from generator.networks import Generator
from generator.sampling import SampleRequest, Sampler

CONFIG = GeneratorConfig(resolution=32, latent_dim=16, base_width=4, max_width=16)


def _checkpoint(tmp_path, config: GeneratorConfig = CONFIG, half: bool = False):
    torch.manual_seed(1)
    return save_checkpoint(tmp_path / "g.safetensors", config, Generator(config).state_dict(), half=half)


@pytest.fixture
def sampler(tmp_path) -> Sampler:
    return Sampler(_checkpoint(tmp_path), device="cpu")


def test_same_seed_is_bit_identical_on_repeat(tmp_path, sampler):
    first = sampler.sample_one(42).pixels
    assert first.shape == (32, 32) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    assert np.array_equal(first, sampler.sample_one(42).pixels)
    assert np.array_equal(first, Sampler(sampler.checkpoint_path, device="cpu").sample_one(42).pixels)


def test_seed_alone_matches_seed_in_any_batch(sampler):
    alone = sampler.sample_one(7).pixels
    for others in ([1, 2, 3], list(range(100, 140))):
        batch = sampler.sample([SampleRequest(s) for s in others[:2]] + [SampleRequest(7)] + [SampleRequest(s) for s in others[2:]])
        assert np.abs(batch[2].pixels - alone).max() <= 1 / 255


def test_long_request_lists_are_split_into_batches(sampler):
    results = sampler.sample([SampleRequest(s) for s in range(sampler.max_batch + 3)])
    assert [r.provenance["seed"] for r in results] == list(range(sampler.max_batch + 3))
    assert np.abs(results[-1].pixels - sampler.sample_one(sampler.max_batch + 2).pixels).max() <= 1 / 255


def test_different_seeds_differ(sampler):
    a, b = sampler.sample([SampleRequest(1), SampleRequest(2)])
    assert np.abs(a.pixels - b.pixels).mean() > 1e-3


def test_truncation_scales_the_latent_towards_zero(sampler):
    a, b = sampler.sample([SampleRequest(1, truncation=0.0), SampleRequest(2, truncation=0.0)])
    assert np.array_equal(a.pixels, b.pixels)  # both are the mean-latent image
    half = sampler.sample_one(1, truncation=0.5).pixels
    assert not np.array_equal(half, sampler.sample_one(1).pixels)
    with pytest.raises(ValueError, match="truncation"):
        sampler.sample_one(1, truncation=1.5)


def test_provenance_records_where_each_image_came_from(sampler):
    result = sampler.sample_one(3, truncation=0.7)
    assert result.provenance == result.provenance | {
        "checkpoint_name": "g.safetensors",
        "checkpoint_sha256": checkpoint_sha256(sampler.checkpoint_path),
        "architecture": "dcgan",
        "resolution": 32,
        "seed": 3,
        "label": None,
        "truncation": 0.7,
        "device": "cpu",
        "generator_version": __version__,
    }


def test_labels_are_required_exactly_when_conditional(tmp_path, sampler):
    with pytest.raises(ValueError, match="unconditional"):
        sampler.sample_one(1, label=0)
    with pytest.raises(ValueError, match="seed"):
        sampler.sample_one(-1)

    conditional = Sampler(_checkpoint(tmp_path, GeneratorConfig(resolution=32, latent_dim=16, base_width=4,
                                                                max_width=16, num_classes=2)), device="cpu")
    a, b = conditional.sample([SampleRequest(5, label=0), SampleRequest(5, label=1)])
    assert a.provenance["label"] == 0 and not np.array_equal(a.pixels, b.pixels)
    with pytest.raises(ValueError, match="label"):
        conditional.sample_one(5)
    with pytest.raises(ValueError, match="label"):
        conditional.sample_one(5, label=2)


def test_fp16_release_samples_close_to_fp32(tmp_path, sampler):
    (tmp_path / "half").mkdir()
    half = Sampler(_checkpoint(tmp_path / "half", half=True), device="cpu")
    assert np.abs(half.sample_one(9).pixels - sampler.sample_one(9).pixels).max() < 0.02


def test_compiling_is_only_for_stylegan2(tmp_path):
    with pytest.raises(ValueError, match="StyleGAN2"):
        Sampler(_checkpoint(tmp_path), device="cpu", compile=True)
    assert not Sampler(_checkpoint(tmp_path), device="cpu").compiled  # CPU default: eager

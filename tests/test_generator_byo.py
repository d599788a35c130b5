"""Bring-your-own generator: an ONNX (z, label) -> image model served by the Sampler."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from generator.sampling import SampleRequest, Sampler  # noqa: E402
from tests.synthetic import write_onnx_generator  # noqa: E402


def test_onnx_generator_is_sampled_reproducibly(tmp_path):
    sampler = Sampler(write_onnx_generator(tmp_path / "own.onnx", conditional=False), device="cpu")
    assert sampler.config.to_dict() == {"resolution": 8, "latent_dim": 16, "num_classes": 0, "architecture": "onnx"}
    a = sampler.sample_one(5)
    assert a.pixels.shape == (8, 8) and 0 <= a.pixels.min() and a.pixels.max() <= 1
    assert np.array_equal(a.pixels, sampler.sample_one(5).pixels)
    batch = sampler.sample([SampleRequest(s) for s in (1, 5, 9)])
    assert np.abs(batch[1].pixels - a.pixels).max() <= 1 / 255
    assert a.provenance["architecture"] == "onnx" and a.provenance["checkpoint_name"] == "own.onnx"
    assert np.allclose(sampler.sample_one(5, truncation=0.0).pixels, 0.5)  # z = 0 -> tanh(0)


def test_conditional_onnx_generator(tmp_path):
    sampler = Sampler(write_onnx_generator(tmp_path / "cond.onnx", conditional=True), device="cpu")
    assert sampler.config.num_classes == 3
    a, b = sampler.sample([SampleRequest(5, 0), SampleRequest(5, 2)])
    assert not np.array_equal(a.pixels, b.pixels)
    with pytest.raises(ValueError, match="label"):
        sampler.sample_one(5)

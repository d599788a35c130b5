"""Bring-your-own generator: an ONNX (z, label) -> image model served by the Sampler."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from generator.sampling import SampleRequest, Sampler  # noqa: E402


def _model(path, conditional: bool, latent_dim: int = 16, size: int = 8, classes: int = 3):
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.3, (latent_dim, size * size)).astype(np.float32), "W")
    shape = numpy_helper.from_array(np.array([-1, 1, size, size], dtype=np.int64), "shape")
    inits, nodes = [weight, shape], []
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", latent_dim])]
    source = "z"
    if conditional:
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["B"]))
        inits.append(numpy_helper.from_array(rng.normal(0, 1, (classes, latent_dim)).astype(np.float32), "E"))
        nodes += [helper.make_node("Gather", ["E", "label"], ["e"]), helper.make_node("Add", ["z", "e"], ["ze"])]
        source = "ze"
    nodes += [helper.make_node("MatMul", [source, "W"], ["h"]), helper.make_node("Tanh", ["h"], ["t"]),
              helper.make_node("Reshape", ["t", "shape"], ["image"])]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 1, size, size])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if conditional:
        helper.set_model_props(model, {"num_classes": str(classes)})
    onnx.save(model, str(path))
    return path


def test_onnx_generator_is_sampled_reproducibly(tmp_path):
    sampler = Sampler(_model(tmp_path / "own.onnx", conditional=False), device="cpu")
    assert sampler.config.to_dict() == {"resolution": 8, "latent_dim": 16, "num_classes": 0, "architecture": "onnx"}
    a = sampler.sample_one(5)
    assert a.pixels.shape == (8, 8) and 0 <= a.pixels.min() and a.pixels.max() <= 1
    assert np.array_equal(a.pixels, sampler.sample_one(5).pixels)
    batch = sampler.sample([SampleRequest(s) for s in (1, 5, 9)])
    assert np.abs(batch[1].pixels - a.pixels).max() <= 1 / 255
    assert a.provenance["architecture"] == "onnx" and a.provenance["checkpoint_name"] == "own.onnx"
    assert np.allclose(sampler.sample_one(5, truncation=0.0).pixels, 0.5)  # z = 0 -> tanh(0)


def test_conditional_onnx_generator(tmp_path):
    sampler = Sampler(_model(tmp_path / "cond.onnx", conditional=True), device="cpu")
    assert sampler.config.num_classes == 3
    a, b = sampler.sample([SampleRequest(5, 0), SampleRequest(5, 2)])
    assert not np.array_equal(a.pixels, b.pixels)
    with pytest.raises(ValueError, match="label"):
        sampler.sample_one(5)

"""Bulk production (generate + encode + store) writes the same pixels the Sampler returns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from generator.__main__ import main
from generator.checkpoints import save_checkpoint
from generator.config import GeneratorConfig
from generator.images import encode_png16
from generator.networks import build_generator
from generator.production import write_samples
from generator.sampling import SampleRequest, Sampler

CONFIG = GeneratorConfig(architecture="stylegan2", resolution=32, latent_dim=16, base_width=4, max_width=16,
                         mapping_layers=2)


def test_write_samples_matches_sampler(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "g.safetensors", CONFIG, build_generator(CONFIG).state_dict())
    sampler = Sampler(path, device="cpu")
    requests = [SampleRequest(s) for s in range(5)]
    paths = write_samples(sampler, requests, tmp_path / "out", batch_size=2, workers=2)
    assert [p.name for p in paths] == [f"seed-{s}.png" for s in range(5)]
    for request, png in zip(requests, paths):
        with Image.open(png) as im:
            stored = np.asarray(im) / 65535.0
        assert np.abs(stored - sampler.sample([request])[0].pixels).max() <= 1 / 255
    lines = [json.loads(x) for x in (tmp_path / "out" / "provenance.jsonl").read_text().splitlines()]
    assert [x["seed"] for x in lines] == list(range(5)) and lines[0]["file"] == "seed-0.png"

    assert main(["sample", "--checkpoint", str(path), "--count", "3", "--seed", "10", "--out", str(tmp_path / "cli"),
                 "--device", "cpu"]) == 0
    assert sorted(p.name for p in (tmp_path / "cli").glob("*.png")) == ["seed-10.png", "seed-11.png", "seed-12.png"]


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 3), (64, 48)])
def test_png16_encoder_round_trips_through_pillow(tmp_path, shape):
    pixels = np.random.default_rng(0).integers(0, 65536, shape, dtype=np.uint16)
    path = tmp_path / "x.png"
    path.write_bytes(encode_png16(pixels))
    with Image.open(path) as image:
        assert image.size == shape[::-1] and image.mode in ("I;16", "I;16B", "I")
        assert np.array_equal(np.asarray(image).astype(np.uint16), pixels)
    with pytest.raises(ValueError, match="uint16"):
        encode_png16(pixels.astype(np.int32))
    with pytest.raises(ValueError, match="non-empty"):
        encode_png16(np.zeros((0, 4), dtype=np.uint16))

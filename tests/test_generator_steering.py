"""Expert steering: interpolation, PCA and class directions, reproducible and recorded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.checkpoints import save_checkpoint
from generator.config import GeneratorConfig
from generator.networks import build_generator
from generator.sampling import Sampler
from generator.steering import Steerer, SteeringRequest

CONFIG = GeneratorConfig(architecture="stylegan2", resolution=32, latent_dim=16, base_width=4, max_width=16,
                         mapping_layers=2, num_classes=3)


@pytest.fixture(scope="module")
def steerer(tmp_path_factory):
    torch.manual_seed(0)
    G = build_generator(CONFIG)
    G.update_w_avg(256)
    path = save_checkpoint(tmp_path_factory.mktemp("steer") / "g.safetensors", CONFIG, G.state_dict())
    return Steerer(Sampler(path, device="cpu"), components=4)


def test_no_steering_equals_plain_sampling(steerer):
    plain = steerer.sampler.sample_one(5, label=1, truncation=0.8).pixels
    steered = steerer.sample([SteeringRequest(5, 1, 0.8)])[0]
    # Steered images run through the Sampler's own synthesis (one image per pass on the CPU,
    # a padded batch on CUDA), so batch mates change no pixel.
    assert np.array_equal(plain, steered.pixels)
    in_batch = steerer.sample([SteeringRequest(6, 0, 1.0), SteeringRequest(5, 1, 0.8)])[1]
    assert np.array_equal(plain, in_batch.pixels)
    assert steered.provenance["steering"]["seed"] == 5


def test_interpolation_end_points_and_reproducibility(steerer):
    a = steerer.sample([SteeringRequest(5, 1, mix_seed=9, mix=1.0)])[0]
    w_end = steerer.w_for(SteeringRequest(5, 1, mix_seed=9, mix=1.0))
    assert torch.allclose(w_end, steerer.w_for(SteeringRequest(9, 1)))
    half = SteeringRequest(5, 1, mix_label=2, mix=0.5)
    assert np.array_equal(steerer.sample([half])[0].pixels, steerer.sample([half])[0].pixels)
    assert a.provenance["steering"]["mix_seed"] == 9


def test_pca_and_class_directions(steerer):
    mean, components, std = steerer.pca()
    assert components.shape == (4, 16) and torch.allclose(components.norm(dim=1), torch.ones(4), atol=1e-5)
    assert (std[:-1] >= std[1:]).all()
    base = steerer.w_for(SteeringRequest(5, 0))
    moved = steerer.w_for(SteeringRequest(5, 0, pca_component=0, pca_amount=2.0))
    assert torch.allclose(moved - base, 2.0 * std[0] * components[0], atol=1e-5)
    towards = steerer.w_for(SteeringRequest(5, 0, towards_label=2, towards_amount=1.0))
    G = steerer.G
    assert torch.allclose(towards - base, G.w_avg[2] - G.w_avg[0], atol=1e-5)
    more = steerer.sample([SteeringRequest(5, 0, towards_label=2, towards_amount=1.0)])[0]
    assert more.provenance["steering"]["towards_label"] == 2


def test_steer_command_writes_a_strip_and_records_each_request(steerer, tmp_path, capsys):
    import json

    from PIL import Image

    from generator.__main__ import main

    checkpoint = str(steerer.sampler.checkpoint_path)
    strip = tmp_path / "strip.png"
    assert main(["steer", "--checkpoint", checkpoint, "--seed", "5", "--label", "0", "--towards-label", "2",
                 "--amounts", "0,0.5,1", "--out", str(strip), "--device", "cpu"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["steering"]["towards_amount"] for line in lines] == [0.0, 0.5, 1.0]
    assert all(line["steering"]["towards_label"] == 2 and line["seed"] == 5 for line in lines)
    with Image.open(strip) as im:
        assert im.mode == "L" and im.size == (3 * 32 + 2 * 2, 32)
    strip_pixels = np.asarray(Image.open(strip), dtype=np.float64) / 255
    last = steerer.sample([SteeringRequest(seed=5, label=0, towards_label=2, towards_amount=1.0)])[0].pixels
    assert np.abs(strip_pixels[:, -32:] - last).max() <= 1 / 255 + 1e-9  # the same image, 8-bit

    one = tmp_path / "one.png"
    assert main(["steer", "--checkpoint", checkpoint, "--seed", "5", "--label", "0", "--pca-component", "1",
                 "--amounts", "2", "--out", str(one), "--device", "cpu"]) == 0
    with Image.open(one) as im:
        assert im.mode == "I;16"
    with pytest.raises(SystemExit, match="label"):
        main(["steer", "--checkpoint", checkpoint, "--seed", "5", "--label", "7", "--towards-label", "2", "--out", str(one)])

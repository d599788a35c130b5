"""CUDA-only checks (skipped without a GPU): bf16 sampling reproducibility and a mixed-precision training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.checkpoints import load_checkpoint, save_checkpoint
from generator.config import GeneratorConfig, TrainingConfig
from generator.networks import build_generator
from generator.sampling import SampleRequest, Sampler
from generator.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

CONFIG = GeneratorConfig(architecture="stylegan2", resolution=64, latent_dim=32, base_width=8, max_width=32,
                         mapping_layers=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    G = build_generator(CONFIG)
    G.update_w_avg(256)
    return save_checkpoint(tmp_path_factory.mktemp("cuda") / "g.safetensors", CONFIG, G.state_dict())


def test_bf16_sampling_repeats_exactly_and_stays_close_in_batches(checkpoint):
    sampler = Sampler(checkpoint)
    assert sampler.device.type == "cuda" and sampler.precision == "bf16"
    alone = sampler.sample_one(7)
    assert np.array_equal(alone.pixels, Sampler(checkpoint).sample_one(7).pixels)
    batch = sampler.sample([SampleRequest(s) for s in (1, 2, 7, *range(100, 130))])
    # Forward passes are padded to one batch size on CUDA, so batch mates change nothing.
    assert np.array_equal(batch[2].pixels, alone.pixels)
    # The served form (subpixel upsampling, compiled) against the plain eager one.
    assert sampler.compiled, sampler.compile_error
    assert alone.provenance["forward"] == "activation-modulation+subpixel-upsampling+torch.compile"
    eager = Sampler(checkpoint, compile=False)
    eager.generator.set_subpixel_upsampling(False)
    # bf16 rounds the two forms differently (H100: 0.7 grey levels apart on average)
    assert np.abs(eager.sample_one(7).pixels - alone.pixels).mean() < 0.005
    fp32 = Sampler(checkpoint, precision="fp32", compile=False).sample_one(7)
    cpu = Sampler(checkpoint, device="cpu").sample_one(7)
    assert np.abs(fp32.pixels - cpu.pixels).max() <= 1 / 255
    assert np.abs(alone.pixels - cpu.pixels).mean() < 0.01


def test_mixed_precision_training_steps(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((rng.random((64, 64)) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    config = TrainingConfig(steps=3, batch_size=4, r1_every=2, augment="translation,cutout,brightness,contrast")
    result = train(tmp_path, tmp_path / "out", CONFIG, config, device="cuda", progress=False)
    assert result.step == 3
    state = load_checkpoint(result.training)
    assert all(torch.isfinite(v).all() for v in state.training.g.values())

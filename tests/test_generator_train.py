"""End-to-end training on a tiny config, and exact resumption."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from generator.checkpoints import load_checkpoint
from generator.config import GeneratorConfig, TrainingConfig
from generator.sampling import Sampler
from generator.train import RELEASE_CHECKPOINT, TRAINING_CHECKPOINT, train

CONFIG = GeneratorConfig(resolution=32, latent_dim=16, base_width=4, max_width=16)
TRAINING = TrainingConfig(steps=4, batch_size=4, checkpoint_every=2, sample_every=2, r1_every=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray((rng.random((40, 40)) * 65535).astype(np.uint16)).save(folder / f"{i}.png")
    return folder


def _run(data_dir, out, steps, resume=False):
    config = TrainingConfig(**{**TRAINING.to_dict(), "steps": steps})
    return train(data_dir, out, CONFIG, config, resume=resume, device="cpu", progress=False)


@pytest.fixture(scope="module")
def straight(data_dir, tmp_path_factory):
    """A 4-step run without interruption, shared by the tests below."""
    return _run(data_dir, tmp_path_factory.mktemp("straight"), 4)


def test_trains_end_to_end_and_writes_outputs(straight):
    result = straight
    assert result.step == 4
    assert result.release.name == RELEASE_CHECKPOINT and result.training.name == TRAINING_CHECKPOINT
    assert sorted(p.name for p in (result.release.parent / "samples").iterdir()) == ["step-0000002.png", "step-0000004.png"]
    release = load_checkpoint(result.release)
    assert release.kind == "release" and release.config == CONFIG
    assert all(t.dtype == torch.float16 for t in release.generator.values())
    assert Sampler(result.release, device="cpu").sample_one(0).pixels.shape == (32, 32)


def test_resume_continues_exactly(data_dir, straight, tmp_path):
    _run(data_dir, tmp_path / "split", 2)
    halfway = load_checkpoint(tmp_path / "split" / TRAINING_CHECKPOINT).training
    assert halfway.step == 2
    assert all(int(s["step"]) == 2 for s in halfway.opt_g["state"].values())

    resumed = _run(data_dir, tmp_path / "split", 4, resume=True)
    assert resumed.step == 4
    a, b = load_checkpoint(straight.training), load_checkpoint(resumed.training)
    assert all(int(s["step"]) == 4 for s in b.training.opt_d["state"].values())
    for name in ("g", "d"):
        for key, value in getattr(a.training, name).items():
            assert torch.equal(value, getattr(b.training, name)[key]), (name, key)
    for key, value in a.generator.items():  # the EMA
        assert torch.equal(value, b.generator[key]), key
    for index, state in a.training.opt_g["state"].items():
        assert torch.equal(state["exp_avg_sq"], b.training.opt_g["state"][index]["exp_avg_sq"])


def test_resume_refuses_changed_hyperparameters(data_dir, tmp_path):
    _run(data_dir, tmp_path / "run", 2)
    changed = TrainingConfig(**{**TRAINING.to_dict(), "lr_g": 1e-3})
    with pytest.raises(ValueError, match="only"):
        train(data_dir, tmp_path / "run", CONFIG, changed, resume=True, device="cpu", progress=False)

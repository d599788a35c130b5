"""StyleGAN2 training on the CPU: end to end with DiffAugment, exact resume, CLI, and DDP (gloo, 2 processes)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from generator.__main__ import main
from generator.checkpoints import load_checkpoint
from generator.config import GeneratorConfig, TrainingConfig
from generator.sampling import Sampler
from generator.train import RELEASE_CHECKPOINT, TRAINING_CHECKPOINT, train

CONFIG = GeneratorConfig(architecture="stylegan2", resolution=32, latent_dim=16, base_width=4, max_width=16,
                         mapping_layers=2, num_classes=2)
TRAINING = TrainingConfig(steps=4, batch_size=4, checkpoint_every=2, sample_every=2, r1_every=2, lr_g=2e-3,
                          lr_d=2e-3, betas=(0.0, 0.99), augment="translation,cutout,brightness,contrast")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        Image.fromarray((rng.random((40, 40)) * 65535).astype(np.uint16)).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{i % 2}")
    (folder / "labels.csv").write_text("filename,label\n" + "\n".join(rows) + "\n")
    return folder


def _run(data_dir, out, steps, resume=False):
    config = TrainingConfig(**{**TRAINING.to_dict(), "steps": steps})
    return train(data_dir, out, CONFIG, config, labels_csv=data_dir / "labels.csv", resume=resume, device="cpu",
                 progress=False)


def test_trains_resumes_exactly_and_samples(data_dir, tmp_path):
    straight = _run(data_dir, tmp_path / "straight", 4)
    release = load_checkpoint(straight.release)
    assert release.config == CONFIG and release.generator["w_avg"].shape == (2, 16)
    assert release.generator["w_avg"].abs().sum() > 0  # computed, not the initial zeros
    assert sorted(p.name for p in (tmp_path / "straight" / "samples").iterdir()) == ["step-0000002.png", "step-0000004.png"]

    _run(data_dir, tmp_path / "split", 2)
    resumed = _run(data_dir, tmp_path / "split", 4, resume=True)
    a, b = load_checkpoint(straight.training), load_checkpoint(resumed.training)
    for name in ("g", "d"):
        for key, value in getattr(a.training, name).items():
            assert torch.equal(value, getattr(b.training, name)[key]), (name, key)
    for key, value in a.generator.items():
        assert torch.equal(value, b.generator[key]), key
    assert set(a.training.rng) == {"batches", "latents", "augment"}

    sampler = Sampler(straight.release, device="cpu")
    assert sampler.sample_one(3, label=1).pixels.shape == (32, 32)


def test_cli_uses_stylegan2_defaults(data_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["train", "--arch", "stylegan2", "--data", str(data_dir), "--out", str(out), "--resolution", "32",
                 "--latent-dim", "16", "--base-width", "4", "--max-width", "16", "--mapping-layers", "2",
                 "--batch-size", "2", "--steps", "2", "--device", "cpu"]) == 0
    state = load_checkpoint(out / TRAINING_CHECKPOINT)
    assert state.config.architecture == "stylegan2"
    assert state.training.config.lr_g == 2e-3 and state.training.config.augment
    assert (out / RELEASE_CHECKPOINT).exists()


def _ddp_worker(rank: int, world: int, port: int, data_dir: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GENERATOR_DDP_BACKEND="gloo")
    torch.set_num_threads(1)
    config = TrainingConfig(**{**TRAINING.to_dict(), "steps": 2})
    train(data_dir, out, CONFIG, config, labels_csv=os.path.join(data_dir, "labels.csv"), device="cpu", progress=False)
    torch.distributed.destroy_process_group()


def test_ddp_two_processes_on_cpu(data_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(data_dir), str(tmp_path / "ddp")), nprocs=2, join=True)
    state = load_checkpoint(tmp_path / "ddp" / TRAINING_CHECKPOINT)
    assert state.training.step == 2
    assert (tmp_path / "ddp" / RELEASE_CHECKPOINT).exists()


def test_fine_tunes_a_release_file_with_a_new_discriminator(data_dir, tmp_path):
    """A release file has no training state: init_from starts G from it, and the new D learns alone first."""
    released = load_checkpoint(_run(data_dir, tmp_path / "first", 2).release)
    tuning = TrainingConfig(**{**TRAINING.to_dict(), "steps": 2, "d_warmup_steps": 2, "ema_warmup": False})
    warmed = load_checkpoint(train(data_dir, tmp_path / "warm", CONFIG, tuning, labels_csv=data_dir / "labels.csv",
                                   device="cpu", progress=False, init_from=tmp_path / "first" / RELEASE_CHECKPOINT).release)
    for key, value in released.generator.items():
        if key != "w_avg":  # re-estimated at every save
            assert torch.equal(value, warmed.generator[key]), key  # only D trained during the warm-up

    tuning = TrainingConfig(**{**tuning.to_dict(), "steps": 4})
    tuned = load_checkpoint(train(data_dir, tmp_path / "tuned", CONFIG, tuning, labels_csv=data_dir / "labels.csv",
                                  device="cpu", progress=False, init_from=tmp_path / "first" / RELEASE_CHECKPOINT).release)
    assert any(not torch.equal(value, tuned.generator[key]) for key, value in released.generator.items() if key != "w_avg")

    other = GeneratorConfig(**{**CONFIG.to_dict(), "latent_dim": 8})
    with pytest.raises(ValueError, match="generator, not"):
        train(data_dir, tmp_path / "bad", other, tuning, labels_csv=data_dir / "labels.csv", device="cpu",
              progress=False, init_from=tmp_path / "first" / RELEASE_CHECKPOINT)

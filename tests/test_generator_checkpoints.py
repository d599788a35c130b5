"""Checkpoint format: safetensors round trips, refusal of pickles and mismatched configs."""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from generator.checkpoints import (
    CheckpointError,
    TrainingState,
    checkpoint_sha256,
    load_checkpoint,
    save_checkpoint,
)
from generator.config import GeneratorConfig, TrainingConfig
from generator.networks import Discriminator, Generator

CONFIG = GeneratorConfig(resolution=32, latent_dim=16, base_width=4, max_width=16)


def _weights(config: GeneratorConfig = CONFIG) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return Generator(config).state_dict()


def test_config_json_round_trip_and_validation():
    config = GeneratorConfig(resolution=64, num_classes=3)
    assert GeneratorConfig.from_json(config.to_json()) == config
    training = TrainingConfig(betas=(0.0, 0.9))
    assert TrainingConfig.from_dict(json.loads(training.to_json())) == training
    with pytest.raises(ValueError, match="power of 2"):
        GeneratorConfig(resolution=48)
    with pytest.raises(ValueError, match="unknown"):
        GeneratorConfig.from_dict({"resolution": 64, "colour": True})


def test_release_round_trip_is_bit_exact(tmp_path):
    weights = _weights()
    path = save_checkpoint(tmp_path / "g.safetensors", CONFIG, weights)
    loaded = load_checkpoint(path)
    assert loaded.kind == "release" and loaded.config == CONFIG and loaded.training is None
    assert loaded.generator.keys() == weights.keys()
    for key, value in weights.items():
        assert torch.equal(loaded.generator[key], value), key


def test_fp16_release_halves_and_upcasts_exactly(tmp_path):
    weights = _weights()
    full = save_checkpoint(tmp_path / "full.safetensors", CONFIG, weights)
    half = save_checkpoint(tmp_path / "half.safetensors", CONFIG, weights, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_checkpoint(half).generator
    for key, value in weights.items():
        assert loaded[key].dtype == torch.float16
        assert torch.equal(loaded[key], value.half()), key


def test_training_round_trip_restores_optimizer_and_rng(tmp_path):
    torch.manual_seed(0)
    G, D = Generator(CONFIG), Discriminator(CONFIG)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), lr=1e-3), torch.optim.Adam(D.parameters(), lr=2e-3)
    z = torch.randn(2, CONFIG.latent_dim)
    D(G(z)).sum().backward()
    opt_g.step()
    opt_d.step()
    rng = torch.Generator().manual_seed(5)
    state = TrainingState(TrainingConfig(steps=10), 7, G.state_dict(), D.state_dict(), opt_g.state_dict(),
                          opt_d.state_dict(), {"batches": rng.get_state()})
    path = save_checkpoint(tmp_path / "t.safetensors", CONFIG, G.state_dict(), training=state)

    loaded = load_checkpoint(path).training
    assert loaded is not None and loaded.step == 7 and loaded.config == TrainingConfig(steps=10)
    assert torch.equal(loaded.rng["batches"], rng.get_state())
    for original, restored in ((opt_g.state_dict(), loaded.opt_g), (opt_d.state_dict(), loaded.opt_d)):
        assert restored["param_groups"][0]["lr"] == original["param_groups"][0]["lr"]
        for index, param_state in original["state"].items():
            for key, value in param_state.items():
                assert torch.equal(restored["state"][index][key], value), (index, key)
    fresh = torch.optim.Adam(Generator(CONFIG).parameters(), lr=0.5)
    fresh.load_state_dict(loaded.opt_g)
    assert fresh.param_groups[0]["lr"] == 1e-3


def test_refuses_torch_save_zip_and_pickle(tmp_path):
    zipped = tmp_path / "model.pt"
    torch.save(_weights(), zipped)
    with pytest.raises(CheckpointError, match="zip archive"):
        load_checkpoint(zipped)

    legacy = tmp_path / "legacy.pt"
    torch.save(_weights(), legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(legacy)

    pickled = tmp_path / "plain.pkl"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(pickled)

    archive = tmp_path / "renamed.safetensors"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("data.pkl", b"x")
    with pytest.raises(CheckpointError, match="zip archive"):
        load_checkpoint(archive)

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(junk)


def test_refuses_config_that_does_not_match_weights(tmp_path):
    path = tmp_path / "lying.safetensors"
    bigger = GeneratorConfig(resolution=32, latent_dim=16, base_width=8, max_width=16)
    save_file({f"generator/{k}": v for k, v in _weights().items()}, str(path), metadata={
        "format": "readerstudy-generator", "format_version": "1", "kind": "release",
        "generator_config": bigger.to_json(),
    })
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(path)


def test_refuses_foreign_safetensors(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a readerstudy-generator checkpoint"):
        load_checkpoint(path)


def test_sha256_matches_hashlib(tmp_path):
    path = save_checkpoint(tmp_path / "g.safetensors", CONFIG, _weights())
    assert checkpoint_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()

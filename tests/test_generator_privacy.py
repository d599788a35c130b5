"""Privacy screen: a planted near-copy of a training image is refused, fresh samples pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.checkpoints import save_checkpoint
from generator.config import GeneratorConfig
from generator.networks import build_generator
from generator.privacy import PrivacyScreen
from generator.sampling import BatchingSampler, PrivacyRefusal, SampleRequest, Sampler

CONFIG = GeneratorConfig(architecture="stylegan2", resolution=32, latent_dim=16, base_width=4, max_width=16,
                         mapping_layers=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def patients(n: int, seed: int) -> np.ndarray:
    """Distinct smooth 'anatomies' with noise, one per patient."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    images = []
    for _ in range(n):
        a, b, c, d = rng.uniform(-1, 1, 4)
        base = 0.5 + 0.2 * np.sin(3 * a * xx + 2 * b * yy + c) * np.cos(2 * d * yy - a)
        images.append(base + rng.normal(0, 0.03, base.shape))
    return np.clip(np.stack(images), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def screen_path(tmp_path_factory):
    train, heldout = patients(60, 0), patients(40, 1)
    screen = PrivacyScreen.build(train, heldout, feature_steps=60)
    return screen.save(tmp_path_factory.mktemp("screen") / "g.privacy.safetensors"), train


def test_near_copy_is_refused_and_fresh_images_pass(screen_path):
    path, train = screen_path
    screen = PrivacyScreen.load(path)
    near_copy = np.clip(train[7] + np.random.default_rng(5).normal(0, 0.01, train[7].shape), 0, 1)
    ok, score = screen.check(near_copy)
    assert not ok and score > 1
    fresh = patients(20, 2)
    passed = sum(screen.check(image)[0] for image in fresh)
    assert passed >= 17  # calibrated at the 99th percentile of held-out similarity
    assert screen.checked == 21 and screen.refused == 21 - passed
    assert path.with_suffix(".json").exists()


def test_sampler_applies_the_screen(screen_path, tmp_path):
    path, train = screen_path
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "g.safetensors", CONFIG, build_generator(CONFIG).state_dict())
    sampler = Sampler(checkpoint, device="cpu", privacy_screen=path)
    result = sampler.sample_one(3)
    assert result.provenance["privacy"]["passed"] and result.provenance["privacy"]["threshold"] == 1.0

    # Plant: make the screen consider seed 3's own image a training image.
    screen = sampler.privacy_screen
    planted = PrivacyScreen.build(np.concatenate([train, result.pixels[None]]), patients(40, 1), feature_steps=60)
    sampler.privacy_screen = planted
    with pytest.raises(PrivacyRefusal, match=r"seeds \[3\]") as refusal:
        sampler.sample([SampleRequest(3), SampleRequest(4)])
    assert [r.provenance["seed"] for r in refusal.value.accepted] == [4]
    assert sampler.refused == 1

    with BatchingSampler(sampler) as batching:
        futures = [batching.submit(SampleRequest(s)) for s in (3, 4)]
        with pytest.raises(PrivacyRefusal):
            futures[0].result()
        assert futures[1].result().provenance["seed"] == 4
    del screen

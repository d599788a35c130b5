"""StyleGAN2 networks: shapes, seeded noise, modulation, truncation, checkpoints, sampling, batching."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from generator.augment import diff_augment
from generator.checkpoints import load_checkpoint, save_checkpoint
from generator.config import GeneratorConfig
from generator.networks import build_discriminator, build_generator
from generator.sampling import BatchingSampler, SampleRequest, Sampler, seed_inputs
from generator.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator, seeded_noise, upsample_conv3x3

CONFIG = GeneratorConfig(architecture="stylegan2", resolution=32, latent_dim=16, base_width=4, max_width=16,
                         mapping_layers=2)
CONDITIONAL = GeneratorConfig(**{**CONFIG.to_dict(), "num_classes": 3})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _generator(config: GeneratorConfig = CONFIG) -> StyleGAN2Generator:
    torch.manual_seed(0)
    G = build_generator(config)
    assert isinstance(G, StyleGAN2Generator)
    with torch.no_grad():  # non-zero noise strengths so the noise inputs matter in these tests
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    G.update_w_avg(256)
    return G


def _checkpoint(tmp_path, config: GeneratorConfig = CONFIG, half: bool = False):
    return save_checkpoint(tmp_path / "sg2.safetensors", config, _generator(config).state_dict(), half=half)


def test_shapes_and_discriminator_projection():
    G = _generator(CONDITIONAL)
    D = build_discriminator(CONDITIONAL)
    assert isinstance(D, StyleGAN2Discriminator)
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 0])
    images = G(z, y, noise_keys=torch.arange(4))
    assert images.shape == (4, 1, 32, 32) and images.dtype == torch.float32
    logits = D(images, y)
    assert logits.shape == (4,)
    assert not torch.allclose(D(images, torch.tensor([1, 2, 0, 1])), logits)  # the label is used
    with pytest.raises(ValueError, match="labels are required"):
        G(z)
    assert G.w_avg.shape == (3, 16) and "w_avg" in G.state_dict()
    assert G.macs_per_image() > 0


def test_seeded_noise_is_a_pure_function_of_key_layer_and_pixel():
    a = seeded_noise(torch.tensor([5, 7, 9]), layer=3, height=64, width=64)
    assert a.shape == (3, 1, 64, 64)
    assert torch.equal(a[1], seeded_noise(torch.tensor([7]), 3, 64, 64)[0])  # batch mates don't matter
    assert not torch.equal(a[0], a[1]) and not torch.equal(a, seeded_noise(torch.tensor([5, 7, 9]), 4, 64, 64))
    values = a.flatten()
    assert abs(values.mean().item()) < 0.03 and abs(values.std().item() - 1) < 0.03
    assert torch.isfinite(values).all()


def test_noise_changes_the_image_and_fused_modulation_matches():
    G = _generator().eval()
    z = torch.randn(2, 16)
    with torch.no_grad():
        a = G(z, noise_keys=torch.tensor([1, 2]))
        b = G(z, noise_keys=torch.tensor([3, 4]))
        fused = G.set_fused_modulation(True)(z, noise_keys=torch.tensor([1, 2]))
    assert (a - b).abs().max() > 1e-3
    assert (a - fused).abs().max() < 1e-4


@pytest.mark.parametrize("height, width", [(2, 2), (3, 5), (8, 8), (16, 9)])
def test_subpixel_upsample_conv_equals_upsampling_then_convolving(height, width):
    x = torch.randn(2, 5, height, width, dtype=torch.float64)
    weight = torch.randn(7, 5, 3, 3, dtype=torch.float64)
    expected = F.conv2d(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), weight, padding=1)
    assert torch.allclose(upsample_conv3x3(x, weight), expected, atol=1e-12)


def test_subpixel_generator_matches_the_direct_form():
    G = _generator().eval()
    z, keys = torch.randn(2, 16), torch.tensor([1, 2])
    with torch.no_grad():
        direct = G(z, noise_keys=keys)
        subpixel = G.set_subpixel_upsampling(True)(z, noise_keys=keys)
    assert G.forward_form() == "activation-modulation+subpixel-upsampling"
    assert (direct - subpixel).abs().max() < 1e-4


def test_truncation_pulls_towards_the_class_average():
    G = _generator(CONDITIONAL).eval()
    z, y = torch.randn(2, 16), torch.tensor([1, 1])
    w0 = G.map(z, y, truncation=0.0)
    assert torch.allclose(w0, G.w_avg[[1, 1]])
    assert not torch.allclose(G.map(z, torch.tensor([2, 2]), truncation=0.0), w0)
    assert torch.allclose(G.map(z, y, truncation=1.0), G.map(z, y))


def test_checkpoint_round_trip_keeps_w_avg_and_refuses_wrong_architecture(tmp_path):
    G = _generator(CONDITIONAL)
    path = save_checkpoint(tmp_path / "g.safetensors", CONDITIONAL, G.state_dict())
    loaded = load_checkpoint(path)
    assert loaded.config == CONDITIONAL and loaded.config.to_dict()["architecture"] == "stylegan2"
    for key, value in G.state_dict().items():
        assert torch.equal(loaded.generator[key], value), key
    dcgan = GeneratorConfig(**{**CONDITIONAL.to_dict(), "architecture": "dcgan"})
    from safetensors.torch import save_file

    lying = tmp_path / "lying.safetensors"
    save_file({f"generator/{k}": v.contiguous() for k, v in G.state_dict().items()}, str(lying), metadata={
        "format": "readerstudy-generator", "format_version": "1", "kind": "release", "generator_config": dcgan.to_json()})
    with pytest.raises(Exception, match="do not match"):
        load_checkpoint(lying)


def test_sampler_is_reproducible_and_batch_independent(tmp_path):
    sampler = Sampler(_checkpoint(tmp_path), device="cpu")
    assert sampler.max_batch == 1  # one image per forward pass on CPU: fastest there
    sampler.max_batch = 64  # exercise the batched path too
    first = sampler.sample_one(42)
    assert first.pixels.shape == (32, 32) and first.pixels.dtype == np.float32
    assert np.array_equal(first.pixels, sampler.sample_one(42).pixels)
    assert np.array_equal(first.pixels, Sampler(sampler.checkpoint_path, device="cpu").sample_one(42).pixels)
    batch = sampler.sample([SampleRequest(s) for s in (1, 2, 42, *range(100, 120))])
    assert np.abs(batch[2].pixels - first.pixels).max() <= 1 / 255
    again = sampler.sample([SampleRequest(s) for s in (1, 2, 42, *range(100, 120))])
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(batch, again))  # same batch: bit-identical
    assert first.provenance | {"architecture": "stylegan2", "precision": "fp32", "noise": "seeded-hash-v1", "forward": "grouped-modulation",
                               "seed": 42, "batch_size": 1} == first.provenance
    assert batch[2].provenance["batch_size"] == 23
    assert np.abs(batch[0].pixels - batch[1].pixels).mean() > 1e-3


def test_padded_batches_as_on_cuda_split_and_pad_every_chunk(tmp_path):
    sampler = Sampler(_checkpoint(tmp_path), device="cpu")
    sampler.max_batch = sampler.pad_to = 4  # what CUDA does, at a size a test can afford
    requests = [SampleRequest(s) for s in range(6)]  # two chunks: 4, and 2 padded to 4
    results = sampler.sample(requests)
    assert [r.provenance["batch_size"] for r in results] == [4] * 6
    w = sampler.generator.map(torch.stack([seed_inputs(s, CONFIG.latent_dim)[0] for s in range(6)]))
    keys = torch.tensor([seed_inputs(s, CONFIG.latent_dim)[1] for s in range(6)])
    assert sampler.synthesize(w, keys).shape == (6, 1, 32, 32)
    for request, result in zip(requests[4:], results[4:]):
        assert np.abs(result.pixels - sampler.sample_one(request.seed).pixels).max() <= 1 / 255


def test_sampler_truncation_and_labels(tmp_path):
    sampler = Sampler(_checkpoint(tmp_path, CONDITIONAL, half=True), device="cpu")
    a, b, c = sampler.sample([SampleRequest(1, 0, 0.0), SampleRequest(2, 0, 0.0), SampleRequest(1, 2, 0.0)])
    # truncation 0: the class-average w; only the (seeded) noise differs between seeds
    assert np.abs(a.pixels - b.pixels).mean() < np.abs(a.pixels - c.pixels).mean()
    with pytest.raises(ValueError, match="label"):
        sampler.sample_one(1)


def test_batching_sampler_gathers_concurrent_requests(tmp_path):
    sampler = Sampler(_checkpoint(tmp_path), device="cpu")
    sampler.max_batch = 64
    alone = {s: sampler.sample_one(s).pixels for s in range(12)}
    results: dict[int, np.ndarray] = {}
    with BatchingSampler(sampler, max_wait_s=0.05) as batching:
        def ask(seed: int) -> None:
            results[seed] = batching.sample_one(seed).pixels

        threads = [threading.Thread(target=ask, args=(s,)) for s in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert batching.batches < 12
        with pytest.raises(ValueError, match="seed"):
            batching.submit(SampleRequest(-1))
    assert all(np.abs(results[s] - alone[s]).max() <= 1 / 255 for s in range(12))


def test_diff_augment_is_seeded_and_differentiable():
    x = (torch.rand(4, 1, 16, 16) * 2 - 1).requires_grad_(True)
    policy = "translation,cutout,brightness,contrast"
    a = diff_augment(x, policy, torch.Generator().manual_seed(0))
    b = diff_augment(x, policy, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, diff_augment(x, policy, torch.Generator().manual_seed(1)))
    a.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    cut = diff_augment(torch.ones(2, 1, 16, 16), "cutout", torch.Generator().manual_seed(0))
    assert 0 < (cut == 0).float().mean() < 0.5

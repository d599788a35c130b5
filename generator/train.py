"""GAN training: non-saturating logistic loss, lazy R1 penalty, Adam, EMA of G.

Every random draw after initialisation (batch indices, latents) comes from two CPU
torch.Generators whose states go into the training checkpoint, so a resumed run continues
where the interrupted one would have been: bit for bit on CPU; on CUDA to within float
noise, because some cuDNN backward kernels are not deterministic.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .checkpoints import TrainingState, load_checkpoint, save_checkpoint
from .config import GeneratorConfig, TrainingConfig
from .data import ImageFolderDataset
from .images import make_grid, save_png
from .networks import Discriminator, Generator
from .sampling import latent_for_seed, pick_device

TRAINING_CHECKPOINT = "training-latest.safetensors"
RELEASE_CHECKPOINT = "release.safetensors"
GRID_SEEDS = range(16)  # sample grids show the same seeds as `python -m generator sample --grid 16`
# Settings that do not change the training trajectory, so a resumed run may change them.
FREE_ON_RESUME = ("steps", "checkpoint_every", "sample_every", "release_fp16")


@dataclass(frozen=True)
class TrainResult:
    release: Path
    training: Path
    step: int


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    gen_config: GeneratorConfig,
    train_config: TrainingConfig,
    *,
    labels_csv: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train until train_config.steps, writing checkpoints and sample grids under out_dir.

    With resume=True the run continues from out_dir/training-latest.safetensors; its
    configs must equal the given ones except FREE_ON_RESUME (e.g. `steps`, to train longer).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(device)
    cfg = train_config

    with torch.random.fork_rng(devices=[]):  # seed initialisation without touching the caller's RNG
        torch.manual_seed(cfg.seed)
        G, D = Generator(gen_config), Discriminator(gen_config)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    G, D, G_ema = G.to(device), D.to(device), G_ema.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    batch_rng = torch.Generator().manual_seed(cfg.seed)
    latent_rng = torch.Generator().manual_seed(cfg.seed + 1)
    step = 0
    if resume:
        step = _restore(out / TRAINING_CHECKPOINT, gen_config, cfg, G, D, G_ema, opt_g, opt_d, batch_rng, latent_rng)

    dataset = ImageFolderDataset(data_dir, gen_config.resolution, labels_csv)
    images, labels = (t.to(device) for t in dataset.load_all())
    if gen_config.num_classes and int(labels.max()) >= gen_config.num_classes:
        raise ValueError(f"labels go up to {int(labels.max())} but num_classes is {gen_config.num_classes}")
    conditional = gen_config.num_classes > 0

    def save_training() -> Path:
        state = TrainingState(
            config=cfg, step=step, g=G.state_dict(), d=D.state_dict(),
            opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(),
            rng={"batches": batch_rng.get_state(), "latents": latent_rng.get_state()},
        )
        return save_checkpoint(out / TRAINING_CHECKPOINT, gen_config, G_ema.state_dict(), training=state)

    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
    tick, tick_step = time.perf_counter(), step
    while step < cfg.steps:
        index = torch.randint(len(images), (cfg.batch_size,), generator=batch_rng).to(device)
        real = images[index]
        y = labels[index] if conditional else None

        # Discriminator: real -> 1, fake -> 0; R1 on real images every r1_every steps.
        D.requires_grad_(True)
        with torch.no_grad():
            fake = G(_latents(latent_rng, cfg.batch_size, gen_config.latent_dim, device), y)
        apply_r1 = cfg.r1_gamma > 0 and step % cfg.r1_every == 0
        real.requires_grad_(apply_r1)
        real_logits = D(real, y)
        d_loss = F.softplus(D(fake, y)).mean() + F.softplus(-real_logits).mean()
        if apply_r1:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            d_loss = d_loss + cfg.r1_gamma / 2 * grad.pow(2).sum(dim=(1, 2, 3)).mean() * cfg.r1_every
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        # Generator: non-saturating loss; D's parameters need no gradients here.
        D.requires_grad_(False)
        fake = G(_latents(latent_rng, cfg.batch_size, gen_config.latent_dim, device), y)
        g_loss = F.softplus(-D(fake, y)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        # EMA with a warm-up so early weights are not dominated by the random init.
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.lerp_(p, 1.0 - decay)
        step += 1
        bar.update(1)

        if step % 10 == 0 or step == cfg.steps:
            now = time.perf_counter()
            rate = (step - tick_step) * cfg.batch_size / max(now - tick, 1e-9)
            bar.set_postfix(d_loss=f"{d_loss.item():.3f}", g_loss=f"{g_loss.item():.3f}", img_s=f"{rate:.0f}")
            tick, tick_step = now, step
        if step % cfg.sample_every == 0 or step == cfg.steps:
            _save_sample_grid(G_ema, gen_config, device, out / "samples" / f"step-{step:07d}.png")
        if step % cfg.checkpoint_every == 0 and step < cfg.steps:
            save_training()
    bar.close()

    training_path = save_training()
    release_path = save_checkpoint(out / RELEASE_CHECKPOINT, gen_config, G_ema.state_dict(), half=cfg.release_fp16)
    return TrainResult(release=release_path, training=training_path, step=step)


def _latents(rng: torch.Generator, count: int, dim: int, device: torch.device) -> torch.Tensor:
    return torch.randn(count, dim, generator=rng).to(device)


def _restore(
    path: Path,
    gen_config: GeneratorConfig,
    cfg: TrainingConfig,
    G: Generator,
    D: Discriminator,
    G_ema: Generator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    batch_rng: torch.Generator,
    latent_rng: torch.Generator,
) -> int:
    """Load a training checkpoint into the freshly built objects; returns its step."""
    checkpoint = load_checkpoint(path)
    state = checkpoint.training
    if state is None:
        raise ValueError(f"{path} is a release checkpoint and cannot be resumed")
    if checkpoint.config != gen_config:
        raise ValueError(f"{path} was trained with {checkpoint.config}, not {gen_config}")
    if dataclasses.replace(state.config, **{k: getattr(cfg, k) for k in FREE_ON_RESUME}) != cfg:
        raise ValueError(f"{path} was trained with {state.config}; only {FREE_ON_RESUME} may change on resume")
    G.load_state_dict(state.g)
    D.load_state_dict(state.d)
    G_ema.load_state_dict(checkpoint.generator)
    opt_g.load_state_dict(state.opt_g)
    opt_d.load_state_dict(state.opt_d)
    batch_rng.set_state(state.rng["batches"])
    latent_rng.set_state(state.rng["latents"])
    return state.step


def _save_sample_grid(G_ema: Generator, config: GeneratorConfig, device: torch.device, path: Path) -> None:
    z = torch.stack([latent_for_seed(seed, config.latent_dim) for seed in GRID_SEEDS]).to(device)
    labels = None
    if config.num_classes:
        labels = torch.tensor([seed % config.num_classes for seed in GRID_SEEDS], device=device)
    with torch.inference_mode():
        images = (G_ema(z, labels)[:, 0].float().cpu().numpy() + 1.0) / 2.0
    save_png(make_grid(list(images)), path, bits=8)

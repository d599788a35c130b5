"""GAN training: non-saturating logistic loss, lazy R1 penalty, Adam, EMA of G.

Both architectures (config.architecture "dcgan" or "stylegan2") train here. Options:
DiffAugment on everything the discriminator sees (TrainingConfig.augment), bf16 autocast
on CUDA (TrainingConfig.mixed_precision), and DistributedDataParallel when launched by
`torchrun` (WORLD_SIZE > 1 in the environment: the process group is initialised from
the environment, NCCL on CUDA and gloo on CPU; each rank trains on batch_size /
world_size images per step, gradients are averaged by DDP; only rank 0 writes files).

Every random draw after initialisation (batch indices, latents, StyleGAN2 noise keys,
augmentations) comes from CPU torch.Generators whose states go into the training
checkpoint, so a single-process resumed run continues where the interrupted one would
have been: bit for bit on CPU; on CUDA to within float noise, because some cuDNN
backward kernels are not deterministic. A multi-process run resumes from rank 0's state
with the other ranks reseeded, so it continues equivalently, not identically.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
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
from .augment import diff_augment
from .networks import build_discriminator, build_generator
from .sampling import pick_device, seed_inputs

TRAINING_CHECKPOINT = "training-latest.safetensors"
RELEASE_CHECKPOINT = "release.safetensors"
GRID_SEEDS = range(16)  # sample grids show the same seeds as `python -m generator sample --grid 16`
# Settings that do not change the training trajectory, so a resumed run may change them.
FREE_ON_RESUME = ("steps", "checkpoint_every", "sample_every", "release_fp16")
# What `python -m generator train --arch stylegan2` uses unless a flag says otherwise
# (the StyleGAN2 paper's optimiser; DiffAugment for small radiograph sets).
STYLEGAN2_DEFAULTS = {"lr_g": 2e-3, "lr_d": 2e-3, "betas": (0.0, 0.99), "r1_gamma": 1.0, "r1_every": 16,
                      "ema_decay": 0.999, "augment": "translation,cutout,brightness,contrast"}


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
    time_limit_s: float | None = None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train until train_config.steps, writing checkpoints and sample grids under out_dir.

    With resume=True the run continues from out_dir/training-latest.safetensors; its
    configs must equal the given ones except FREE_ON_RESUME (e.g. `steps`, to train longer).
    time_limit_s stops early (and saves) once that much wall time has passed.
    init_from starts G (and its EMA) from a checkpoint's generator weights, e.g. a release
    file that has no training state, with a new discriminator: fine-tuning. Its config must
    equal gen_config; set train_config.d_warmup_steps so the new D learns before G follows it.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    rank, world = _init_distributed()
    device = pick_device(device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    writer = rank == 0
    if writer:
        out.mkdir(parents=True, exist_ok=True)
    cfg = train_config
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    batch = cfg.batch_size // world
    stylegan = gen_config.architecture == "stylegan2"
    use_amp = cfg.mixed_precision and device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    with torch.random.fork_rng(devices=[]):  # seed initialisation without touching the caller's RNG
        torch.manual_seed(cfg.seed)
        G, D = build_generator(gen_config), build_discriminator(gen_config)
    if init_from is not None and not resume:
        _load_generator(G, init_from, gen_config)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    G, D, G_ema = G.to(device), D.to(device), G_ema.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    rngs = {name: torch.Generator().manual_seed(cfg.seed + offset + 7919 * rank)
            for offset, name in enumerate(("batches", "latents", "augment"))}
    step = 0
    if resume:
        step = _restore(out / TRAINING_CHECKPOINT, gen_config, cfg, G, D, G_ema, opt_g, opt_d, rngs)
        if rank:
            for offset, (name, rng) in enumerate(rngs.items()):
                rng.manual_seed(cfg.seed + offset + 7919 * rank + 104729 * step)

    G_train, D_train = G, D  # the modules whose backward must be synchronised across ranks
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        G_train, D_train = DDP(G, device_ids=ids), DDP(D, device_ids=ids)

    dataset = ImageFolderDataset(data_dir, gen_config.resolution, labels_csv)
    images, labels = (t.to(device) for t in dataset.load_all())
    if gen_config.num_classes and int(labels.max()) >= gen_config.num_classes:
        raise ValueError(f"labels go up to {int(labels.max())} but num_classes is {gen_config.num_classes}")
    conditional = gen_config.num_classes > 0

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()

    def generate(module: torch.nn.Module) -> torch.Tensor:
        z = torch.randn(batch, gen_config.latent_dim, generator=rngs["latents"]).to(device)
        if not stylegan:
            return module(z, y)
        keys = torch.randint(0, 2**32, (batch,), generator=rngs["latents"], dtype=torch.int64).to(device)
        return module(z, y, noise_keys=keys)

    def augment(x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, cfg.augment, rngs["augment"]) if cfg.augment else x

    def save_training() -> Path:
        if stylegan:
            G_ema.update_w_avg()
        state = TrainingState(
            config=cfg, step=step, g=G.state_dict(), d=D.state_dict(),
            opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(),
            rng={name: rng.get_state() for name, rng in rngs.items()},
        )
        return save_checkpoint(out / TRAINING_CHECKPOINT, gen_config, G_ema.state_dict(), training=state)

    def _generator_step() -> torch.Tensor:
        """Generator: non-saturating loss; D's parameters need no gradients (and no DDP sync) here."""
        D.requires_grad_(False)
        with autocast():
            fake = generate(G_train)
            g_loss = F.softplus(-D(augment(fake.float()), y).float()).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        # EMA with a warm-up so early weights are not dominated by the random init.
        decay = min(cfg.ema_decay, (1 + step) / (10 + step)) if cfg.ema_warmup else cfg.ema_decay
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.lerp_(p, 1.0 - decay)
        return g_loss

    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and writer), unit="step", dynamic_ncols=True)
    tick, tick_step = time.perf_counter(), step
    while step < cfg.steps:
        index = torch.randint(len(images), (batch,), generator=rngs["batches"]).to(device)
        real = images[index]
        y = labels[index] if conditional else None

        # Discriminator: real -> 1, fake -> 0; R1 on (augmented) real images every r1_every steps.
        D.requires_grad_(True)
        with torch.no_grad(), autocast():
            fake = generate(G)
        apply_r1 = cfg.r1_gamma > 0 and step % cfg.r1_every == 0
        real_in = augment(real).detach().requires_grad_(apply_r1)
        with autocast():
            real_logits = D_train(real_in, y).float()
            fake_logits = D_train(augment(fake.float()), y).float()
        d_loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        if apply_r1:
            (grad,) = torch.autograd.grad(real_logits.sum(), real_in, create_graph=True)
            d_loss = d_loss + cfg.r1_gamma / 2 * grad.float().pow(2).sum(dim=(1, 2, 3)).mean() * cfg.r1_every
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        if step < cfg.d_warmup_steps:  # a new discriminator learns alone first (fine-tuning)
            g_loss = torch.zeros(())
        else:
            g_loss = _generator_step()
        step += 1
        bar.update(1)

        out_of_time = time_limit_s is not None and time.perf_counter() - started > time_limit_s
        if world > 1 and time_limit_s is not None:  # every rank must stop at the same step
            flag = torch.tensor([float(out_of_time)], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        last = step == cfg.steps or out_of_time
        if step % 10 == 0 or last:
            now = time.perf_counter()
            rate = (step - tick_step) * cfg.batch_size / max(now - tick, 1e-9)
            bar.set_postfix(d_loss=f"{d_loss.item():.3f}", g_loss=f"{g_loss.item():.3f}", img_s=f"{rate:.0f}")
            tick, tick_step = now, step
        if writer and (step % cfg.sample_every == 0 or last):
            _save_sample_grid(G_ema, gen_config, device, out / "samples" / f"step-{step:07d}.png")
        if writer and step % cfg.checkpoint_every == 0 and not last:
            save_training()
        if out_of_time:
            break
    bar.close()

    training_path, release_path = out / TRAINING_CHECKPOINT, out / RELEASE_CHECKPOINT
    if writer:
        save_training()
        save_checkpoint(release_path, gen_config, G_ema.state_dict(), half=cfg.release_fp16)
    if world > 1:
        torch.distributed.barrier()
    return TrainResult(release=release_path, training=training_path, step=step)


def _load_generator(G: torch.nn.Module, path: str | Path, gen_config: GeneratorConfig) -> None:
    """G's weights from any checkpoint of the same architecture (a release file included), in G's dtype."""
    checkpoint = load_checkpoint(path)
    if checkpoint.config != gen_config:
        raise ValueError(f"{Path(path).name} is a {checkpoint.config.to_json()} generator, not {gen_config.to_json()}")
    G.load_state_dict({name: tensor.float() for name, tensor in checkpoint.generator.items()})


def _init_distributed() -> tuple[int, int]:
    """(rank, world size); joins the torchrun process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() and os.environ.get("GENERATOR_DDP_BACKEND") != "gloo"
                                else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _restore(
    path: Path,
    gen_config: GeneratorConfig,
    cfg: TrainingConfig,
    G: torch.nn.Module,
    D: torch.nn.Module,
    G_ema: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rngs: dict[str, torch.Generator],
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
    for name, rng in rngs.items():
        if name in state.rng:  # checkpoints older than the "augment" generator lack it
            rng.set_state(state.rng[name])
    return state.step


def _save_sample_grid(G_ema: torch.nn.Module, config: GeneratorConfig, device: torch.device, path: Path) -> None:
    inputs = [seed_inputs(seed, config.latent_dim) for seed in GRID_SEEDS]
    z = torch.stack([z for z, _ in inputs]).to(device)
    labels = None
    if config.num_classes:
        labels = torch.tensor([seed % config.num_classes for seed in GRID_SEEDS], device=device)
    with torch.inference_mode():
        if config.architecture == "stylegan2":
            keys = torch.tensor([k for _, k in inputs], dtype=torch.int64, device=device)
            images = G_ema(z, labels, noise_keys=keys)
        else:
            images = G_ema(z, labels)
    save_png(make_grid(list(((images[:, 0].float().cpu().numpy() + 1.0) / 2.0).clip(0, 1))), path, bits=8)

"""Command line: python -m generator {train,sample,render-ct} ..."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from .config import GeneratorConfig, TrainingConfig
from .demo import DEMO_ARCHIVE_COUNT, DEMO_ARCHIVE_SEED, DEMO_CHECKPOINT, DEMO_RESOLUTION
from .images import make_grid, save_png

# CLI flag -> config field. Flags default to None so that, on --resume, only the flags
# actually given override the configs stored in the checkpoint.
_GENERATOR_FLAGS = {"resolution": int, "latent_dim": int, "base_width": int, "max_width": int, "num_classes": int}
_TRAINING_FLAGS = {
    "steps": int, "batch_size": int, "lr_g": float, "lr_d": float, "ema_decay": float, "r1_gamma": float,
    "r1_every": int, "checkpoint_every": int, "sample_every": int, "seed": int,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a GAN on a folder of grayscale images")
    train.add_argument("--data", type=Path, required=True, help="folder of PNG/JPEG/TIFF images")
    train.add_argument("--out", type=Path, required=True, help="output folder for checkpoints and sample grids")
    train.add_argument("--labels", type=Path, help="CSV of filename,label (integer) for a conditional model")
    train.add_argument("--resume", action="store_true", help="continue from OUT/training-latest.safetensors")
    train.add_argument("--device", help="cuda, cpu, cuda:1, ... (default: CUDA when available)")
    train.add_argument("--fp32-release", action="store_true", help="store release weights as fp32, not fp16")
    for name, kind in (_GENERATOR_FLAGS | _TRAINING_FLAGS).items():
        train.add_argument("--" + name.replace("_", "-"), type=kind, default=None)

    sample = commands.add_parser("sample", help="sample one seed to a 16-bit PNG, or a grid of seeds")
    sample.add_argument("--checkpoint", type=Path, default=DEMO_CHECKPOINT)
    sample.add_argument("--seed", type=int, default=0, help="the seed, or the first seed of a grid")
    sample.add_argument("--label", type=int)
    sample.add_argument("--truncation", type=float, default=1.0)
    sample.add_argument("--grid", type=int, metavar="N", help="write an 8-bit grid of seeds SEED..SEED+N-1")
    sample.add_argument("--out", type=Path, required=True, help="PNG to write")
    sample.add_argument("--device")

    render = commands.add_parser("render-ct", help="render a folder of radiographs from a CT (default: demo CT)")
    render.add_argument("--ct", type=Path, help="NIfTI CT in HU (default: the demo chest CT)")
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--count", type=int, default=DEMO_ARCHIVE_COUNT)
    render.add_argument("--size", type=int, default=DEMO_RESOLUTION)
    render.add_argument("--seed", type=int, default=DEMO_ARCHIVE_SEED)

    args = parser.parse_args(argv)
    return {"train": _train, "sample": _sample, "render-ct": _render}[args.command](args)


def _train(args: argparse.Namespace) -> int:
    from .checkpoints import load_checkpoint
    from .train import TRAINING_CHECKPOINT, train

    gen_config, train_config = GeneratorConfig(), TrainingConfig()
    if args.resume:
        state = load_checkpoint(args.out / TRAINING_CHECKPOINT)
        if state.training is None:
            raise SystemExit("the checkpoint to resume is not a training checkpoint")
        gen_config, train_config = state.config, state.training.config
    given = {k: v for k, v in vars(args).items() if v is not None}
    gen_config = dataclasses.replace(gen_config, **{k: given[k] for k in _GENERATOR_FLAGS if k in given})
    train_config = dataclasses.replace(train_config, **{k: given[k] for k in _TRAINING_FLAGS if k in given})
    if args.fp32_release:
        train_config = dataclasses.replace(train_config, release_fp16=False)

    started = time.perf_counter()
    result = train(args.data, args.out, gen_config, train_config, labels_csv=args.labels, resume=args.resume,
                   device=args.device)
    print(f"trained to step {result.step} in {time.perf_counter() - started:.0f} s; "
          f"release: {result.release}; resumable: {result.training}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from .sampling import SampleRequest, Sampler

    sampler = Sampler(args.checkpoint, device=args.device)
    if args.grid is None:
        result = sampler.sample_one(args.seed, args.label, args.truncation)
        save_png(result.pixels, args.out, bits=16)
        print(json.dumps(result.provenance, indent=2))
        return 0
    classes = sampler.config.num_classes
    requests = [
        SampleRequest(seed, args.label if args.label is not None or not classes else seed % classes, args.truncation)
        for seed in range(args.seed, args.seed + args.grid)
    ]
    save_png(make_grid([r.pixels for r in sampler.sample(requests)]), args.out, bits=8)
    print(f"wrote {args.out}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from .physics import find_demo_ct, render_archive

    started = time.perf_counter()
    paths = render_archive(args.ct or find_demo_ct(), args.out, args.count, args.size, args.seed)
    print(f"rendered {len(paths)} images to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

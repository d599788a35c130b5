"""Command line: python -m generator {train,sample,steer,evaluate,privacy-screen,render-ct} ...

Multi-GPU training: `torchrun --nproc_per_node N -m generator train ...`."""

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
_GENERATOR_FLAGS = {"resolution": int, "latent_dim": int, "base_width": int, "max_width": int, "num_classes": int,
                    "mapping_layers": int}
_TRAINING_FLAGS = {
    "steps": int, "batch_size": int, "lr_g": float, "lr_d": float, "ema_decay": float, "r1_gamma": float,
    "r1_every": int, "checkpoint_every": int, "sample_every": int, "seed": int, "augment": str,
    "d_warmup_steps": int,
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
    train.add_argument("--arch", dest="architecture", choices=("dcgan", "stylegan2"),
                       help="network (default dcgan; stylegan2 also switches to its optimiser/R1/augment defaults)")
    train.add_argument("--no-mixed-precision", action="store_true", help="fp32 on CUDA instead of bf16 autocast")
    train.add_argument("--time-limit", type=float, help="stop (and save) after this many seconds")
    train.add_argument("--init-from", type=Path, help="fine-tune: start G from this checkpoint's generator "
                       "(a release file will do) with a new discriminator; see --d-warmup-steps")
    for name, kind in (_GENERATOR_FLAGS | _TRAINING_FLAGS).items():
        train.add_argument("--" + name.replace("_", "-"), type=kind, default=None)

    sample = commands.add_parser("sample", help="sample one seed to a 16-bit PNG, or a grid of seeds")
    sample.add_argument("--checkpoint", type=Path, default=DEMO_CHECKPOINT)
    sample.add_argument("--seed", type=int, default=0, help="the seed, or the first seed of a grid")
    sample.add_argument("--label", type=int)
    sample.add_argument("--truncation", type=float, default=1.0)
    sample.add_argument("--grid", type=int, metavar="N", help="write an 8-bit grid of seeds SEED..SEED+N-1")
    sample.add_argument("--count", type=int, metavar="N",
                        help="write N 16-bit PNGs (seeds SEED..SEED+N-1) and provenance.jsonl into the folder OUT")
    sample.add_argument("--out", type=Path, required=True, help="PNG to write (a folder with --count)")
    sample.add_argument("--device")

    steer = commands.add_parser(
        "steer", help="a seed moved along a direction of the model (StyleGAN2): one image, or a strip of amounts",
        description="Start from --seed (with --label, --truncation) and move along ONE direction: towards "
                    "another class's mean (--towards-label: 'this seed, more severe'), along a principal "
                    "component of w (--pca-component, amounts in standard deviations), or towards another "
                    "seed/class (--mix-seed and/or --mix-label, amounts in [0, 1]). Each amount gives one "
                    "image; the provenance of each is printed as a JSON line and records the whole request.")
    steer.add_argument("--checkpoint", type=Path, default=DEMO_CHECKPOINT)
    steer.add_argument("--seed", type=int, required=True)
    steer.add_argument("--label", type=int)
    steer.add_argument("--truncation", type=float, default=1.0)
    direction = steer.add_mutually_exclusive_group(required=True)
    direction.add_argument("--towards-label", type=int)
    direction.add_argument("--pca-component", type=int)
    direction.add_argument("--mix-seed", type=int)
    direction.add_argument("--mix-label", type=int)
    steer.add_argument("--amounts", default="1", help="comma-separated, e.g. 0,0.5,1 (default 1)")
    steer.add_argument("--out", type=Path, required=True,
                       help="16-bit PNG for one amount; an 8-bit strip, left to right, for several")
    steer.add_argument("--device")

    evaluate = commands.add_parser("evaluate", help="fidelity of a checkpoint against a folder of real images")
    evaluate.add_argument("--checkpoint", type=Path, default=DEMO_CHECKPOINT)
    evaluate.add_argument("--real", type=Path, required=True, help="folder of real images")
    evaluate.add_argument("--count", type=int, default=400, help="synthetic images (seeds 0..count-1)")
    evaluate.add_argument("--truncation", type=float, default=1.0)
    evaluate.add_argument("--steps", type=int, default=300, help="training steps of the feature net and classifier")
    evaluate.add_argument("--reader-steps", type=int, default=300,
                          help="training steps of each of the machine reader's CNNs (0: statistics only)")
    evaluate.add_argument("--privacy-screen", type=Path, help="also report how many samples this screen refuses")
    evaluate.add_argument("--json", type=Path, help="also write the figures here")
    evaluate.add_argument("--device")

    screen = commands.add_parser("privacy-screen", help="build the privacy screen of a training set")
    screen.add_argument("--train", type=Path, required=True, help="the training images")
    screen.add_argument("--heldout", type=Path, required=True, help="real images NOT trained on, for calibration")
    screen.add_argument("--resolution", type=int, default=DEMO_RESOLUTION)
    screen.add_argument("--quantile", type=float, default=0.99)
    screen.add_argument("--out", type=Path, required=True, help="e.g. CHECKPOINT-stem.privacy.safetensors")

    render = commands.add_parser("render-ct", help="render a folder of radiographs from a CT (default: demo CT)")
    render.add_argument("--ct", type=Path, help="NIfTI CT in HU, or a folder of one DICOM series (default: the demo chest CT)")
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--count", type=int, default=DEMO_ARCHIVE_COUNT)
    render.add_argument("--size", type=int, default=DEMO_RESOLUTION)
    render.add_argument("--seed", type=int, default=DEMO_ARCHIVE_SEED)

    args = parser.parse_args(argv)
    return {"train": _train, "sample": _sample, "evaluate": _evaluate, "privacy-screen": _privacy_screen,
            "render-ct": _render, "steer": _steer}[args.command](args)


def _read_folder(folder: Path, resolution: int):
    import numpy as np

    from .data import ImageFolderDataset

    images, _ = ImageFolderDataset(folder, resolution).load_all()
    return ((images[:, 0].numpy() + 1.0) / 2.0).astype(np.float32)


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .machine_reader import machine_read, summary_line
    from .metrics import evaluate
    from .sampling import SampleRequest, Sampler

    sampler = Sampler(args.checkpoint, device=args.device)
    real = _read_folder(args.real, sampler.config.resolution)
    classes = sampler.config.num_classes
    requests = [SampleRequest(s, s % classes if classes else None, args.truncation) for s in range(args.count)]
    fake = np.stack([r.pixels for r in sampler.sample(requests)])
    figures = {"checkpoint": args.checkpoint.name, "real": str(args.real), "truncation": args.truncation,
               **evaluate(real, fake, feature_steps=args.steps, c2st_steps=args.steps)}
    reading = machine_read(real, fake, learned=args.reader_steps > 0, steps=max(args.reader_steps, 1))
    figures["machine_reader"] = reading.figures
    if args.privacy_screen:
        from .privacy import PrivacyScreen

        screen = PrivacyScreen.load(args.privacy_screen)
        scores = screen.scores(fake)
        figures["privacy"] = {"screen": args.privacy_screen.name, "refused": int((scores > screen.threshold).sum()),
                              "checked": len(scores), "max_score": round(float(scores.max()), 4),
                              "median_score": round(float(np.median(scores)), 4)}
    text = json.dumps(figures, indent=2)
    print(text)
    print(summary_line(reading.figures), file=sys.stderr)  # the headline, under the JSON on stdout
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def _privacy_screen(args: argparse.Namespace) -> int:
    from .privacy import PrivacyScreen

    screen = PrivacyScreen.build(_read_folder(args.train, args.resolution), _read_folder(args.heldout, args.resolution),
                                 quantile=args.quantile)
    path = screen.save(args.out)
    print(f"wrote {path} and {path.with_suffix('.json').name}: pixel threshold {screen.pixel_threshold:.5f}, "
          f"feature threshold {screen.feature_threshold:.5f}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .checkpoints import load_checkpoint
    from .train import STYLEGAN2_DEFAULTS, TRAINING_CHECKPOINT, train

    gen_config, train_config = GeneratorConfig(), TrainingConfig()
    if args.resume:
        state = load_checkpoint(args.out / TRAINING_CHECKPOINT)
        if state.training is None:
            raise SystemExit("the checkpoint to resume is not a training checkpoint")
        gen_config, train_config = state.config, state.training.config
    given = {k: v for k, v in vars(args).items() if v is not None}
    if not args.resume and given.get("architecture") == "stylegan2":
        train_config = dataclasses.replace(train_config, **STYLEGAN2_DEFAULTS)
    if "architecture" in given:
        gen_config = dataclasses.replace(gen_config, architecture=given["architecture"])
    gen_config = dataclasses.replace(gen_config, **{k: given[k] for k in _GENERATOR_FLAGS if k in given})
    train_config = dataclasses.replace(train_config, **{k: given[k] for k in _TRAINING_FLAGS if k in given})
    if args.fp32_release:
        train_config = dataclasses.replace(train_config, release_fp16=False)
    if args.no_mixed_precision:
        train_config = dataclasses.replace(train_config, mixed_precision=False)
    if args.init_from and not args.resume:  # the EMA starts from trained weights: no warm-up towards them
        train_config = dataclasses.replace(train_config, ema_warmup=False)

    started = time.perf_counter()
    result = train(args.data, args.out, gen_config, train_config, labels_csv=args.labels, resume=args.resume,
                   device=args.device, time_limit_s=args.time_limit, init_from=args.init_from)
    print(f"trained to step {result.step} in {time.perf_counter() - started:.0f} s; "
          f"release: {result.release}; resumable: {result.training}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from .sampling import SampleRequest, Sampler

    sampler = Sampler(args.checkpoint, device=args.device)
    classes = sampler.config.num_classes
    if args.count is not None:
        from .production import write_samples

        requests = [
            SampleRequest(seed, args.label if args.label is not None or not classes else seed % classes, args.truncation)
            for seed in range(args.seed, args.seed + args.count)
        ]
        started = time.perf_counter()
        paths = write_samples(sampler, requests, args.out)
        print(f"wrote {len(paths)} images to {args.out} in {time.perf_counter() - started:.1f} s")
        return 0
    if args.grid is None:
        result = sampler.sample_one(args.seed, args.label, args.truncation)
        save_png(result.pixels, args.out, bits=16)
        print(json.dumps(result.provenance, indent=2))
        return 0
    requests = [
        SampleRequest(seed, args.label if args.label is not None or not classes else seed % classes, args.truncation)
        for seed in range(args.seed, args.seed + args.grid)
    ]
    save_png(make_grid([r.pixels for r in sampler.sample(requests)]), args.out, bits=8)
    print(f"wrote {args.out}")
    return 0


def _steer(args: argparse.Namespace) -> int:
    from .sampling import Sampler
    from .steering import Steerer, SteeringRequest

    try:
        amounts = [float(a) for a in args.amounts.split(",") if a.strip()]
    except ValueError:
        raise SystemExit(f"--amounts must be numbers separated by commas, got {args.amounts!r}") from None
    if not amounts:
        raise SystemExit("--amounts names no amount")
    base = {"seed": args.seed, "label": args.label, "truncation": args.truncation}
    if args.towards_label is not None:
        requests = [SteeringRequest(**base, towards_label=args.towards_label, towards_amount=a) for a in amounts]
    elif args.pca_component is not None:
        requests = [SteeringRequest(**base, pca_component=args.pca_component, pca_amount=a) for a in amounts]
    else:
        requests = [SteeringRequest(**base, mix_seed=args.mix_seed, mix_label=args.mix_label, mix=a) for a in amounts]
    try:
        results = Steerer(Sampler(args.checkpoint, device=args.device)).sample(requests)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if len(results) == 1:
        save_png(results[0].pixels, args.out, bits=16)
    else:
        save_png(make_grid([r.pixels for r in results], columns=len(results)), args.out, bits=8)
    for result in results:
        print(json.dumps(result.provenance, sort_keys=True))
    return 0


def _render(args: argparse.Namespace) -> int:
    from .physics import find_demo_ct, render_archive

    started = time.perf_counter()
    paths = render_archive(args.ct or find_demo_ct(), args.out, args.count, args.size, args.seed)
    print(f"rendered {len(paths)} images to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU benchmark of on-demand sampling (what the site does): images/s, single-image
latency and peak RSS for the demo StyleGAN2 checkpoint at its resolution, with the
previous demo generator (DCGAN, 128 px) as the baseline measured in the same run.

    python bench/bench_generator.py            # uses torch's default thread count
    python bench/bench_generator.py --threads 2

Each figure is the best of --repeats timed rounds (after a warm-up); every round times
each demo variant once, so that other jobs on a shared box inflate them less and alike.
images/s is measured for requests sampled in one call of Sampler.sample: "demo" with the Sampler's CPU default (one image per forward pass, which
measured fastest), "demo_batched" with forward passes of `--batch` requests,
"demo_screened" with the demo's privacy screen checking every image (as the site does),
and "demo_production" generating, encoding (16-bit PNG) and writing every image
(generator.production.write_samples, what `python -m generator sample --count` does).
Ratios against "demo" come from the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.demo import DEMO_CHECKPOINT, DEMO_PRIVACY_SCREEN  # noqa: E402
from generator.production import write_samples  # noqa: E402
from generator.sampling import SampleRequest, Sampler  # noqa: E402

BASELINE = Path(__file__).resolve().parents[1] / "generator" / "checkpoints" / "demo-dcgan.safetensors"


class Variant:
    """One way of sampling the demo requests, timed a round at a time."""

    def __init__(self, path: Path, images: int, *, batch: int | None = None, screen: Path | None = None,
                 produce: bool = False) -> None:
        self.path, self.produce = path, produce
        self.sampler = Sampler(path, device="cpu", privacy_screen=screen)
        if batch:
            self.sampler.max_batch = batch
        classes = self.sampler.config.num_classes
        self.label = 0 if classes else None
        self.requests = [SampleRequest(s, s % classes if classes else None) for s in range(images)]
        self.rates: list[float] = []
        self.latencies: list[float] = []
        self.sampler.sample(self.requests[:self.sampler.max_batch])  # warm-up

    def run_once(self, round_index: int) -> None:
        started = time.perf_counter()
        if self.produce:
            with tempfile.TemporaryDirectory() as out:
                write_samples(self.sampler, self.requests, out, workers=2)
        else:
            self.sampler.sample(self.requests)
        self.rates.append(len(self.requests) / (time.perf_counter() - started))
        started = time.perf_counter()
        self.sampler.sample([SampleRequest(10_000 + round_index, self.label)])
        self.latencies.append(time.perf_counter() - started)

    def summary(self) -> dict:
        return {"checkpoint": self.path.name, "config": self.sampler.config.to_dict(), "batch": self.sampler.max_batch,
                "images_per_s": round(max(self.rates), 2), "single_image_latency_ms": round(1000 * min(self.latencies), 1)}


def measure_interleaved(variants: dict[str, Variant], repeats: int) -> dict[str, dict]:
    """Best of `repeats` rounds, each round timing every variant once: slow spells on a shared
    box then hit all variants alike, which keeps their ratios fair."""
    for round_index in range(repeats):
        for variant in variants.values():
            variant.run_once(round_index)
    return {name: variant.summary() for name, variant in variants.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                           "torch": torch.__version__}}
    demo = {
        "demo": Variant(DEMO_CHECKPOINT, args.images),  # the Sampler's CPU default: one image per pass
        "demo_batched": Variant(DEMO_CHECKPOINT, args.images, batch=args.batch),
        "demo_screened": Variant(DEMO_CHECKPOINT, args.images, screen=DEMO_PRIVACY_SCREEN),
        "demo_production": Variant(DEMO_CHECKPOINT, args.images, produce=True),
    }
    results |= measure_interleaved(demo, args.repeats)
    rss_after_demo = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for name in ("demo_batched", "demo_screened", "demo_production"):
        results[f"ratio_{name}_vs_demo_images_per_s"] = round(
            results[name]["images_per_s"] / results["demo"]["images_per_s"], 3)
    if BASELINE.exists() and BASELINE != DEMO_CHECKPOINT:
        results |= measure_interleaved({"baseline": Variant(BASELINE, args.images, batch=args.batch)}, args.repeats)
        results["ratio_demo_vs_baseline_images_per_s"] = round(
            results["demo"]["images_per_s"] / results["baseline"]["images_per_s"], 3)
    results["peak_rss_mib_after_demo"] = round(rss_after_demo, 1)
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()

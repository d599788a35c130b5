"""CPU benchmark of on-demand sampling (what the site does): images/s, single-image
latency and peak RSS for the demo StyleGAN2 checkpoint at its resolution, with the
previous demo generator (DCGAN, 128 px) as the baseline measured in the same run.

    python bench/bench_generator.py            # uses torch's default thread count
    python bench/bench_generator.py --threads 2

Each figure is the best of --repeats timed runs (after a warm-up), so that other jobs on
a shared box inflate it less; images/s is measured for requests sampled in one call of
Sampler.sample: "demo" with the Sampler's CPU default (one image per forward pass, which
measured fastest), "demo_batched" with forward passes of `--batch` requests.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.demo import DEMO_CHECKPOINT  # noqa: E402
from generator.sampling import SampleRequest, Sampler  # noqa: E402

BASELINE = Path(__file__).resolve().parents[1] / "generator" / "checkpoints" / "demo-dcgan.safetensors"


def measure(path: Path, batch: int | None, images: int, repeats: int) -> dict:
    sampler = Sampler(path, device="cpu")
    if batch:
        sampler.max_batch = batch
    batch = sampler.max_batch
    classes = sampler.config.num_classes
    requests = [SampleRequest(s, s % classes if classes else None) for s in range(images)]
    sampler.sample(requests[:batch])  # warm-up
    rates, latencies = [], []
    for r in range(repeats):
        started = time.perf_counter()
        sampler.sample(requests)
        rates.append(images / (time.perf_counter() - started))
        started = time.perf_counter()
        sampler.sample([SampleRequest(10_000 + r, 0 if classes else None)])
        latencies.append(time.perf_counter() - started)
    return {"checkpoint": path.name, "config": sampler.config.to_dict(), "batch": batch,
            "images_per_s": round(max(rates), 2), "single_image_latency_ms": round(1000 * min(latencies), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                           "torch": torch.__version__}}
    results["demo"] = measure(DEMO_CHECKPOINT, None, args.images, args.repeats)  # the Sampler's CPU default
    results["demo_batched"] = measure(DEMO_CHECKPOINT, args.batch, args.images, args.repeats)
    rss_after_demo = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if BASELINE.exists() and BASELINE != DEMO_CHECKPOINT:
        results["baseline"] = measure(BASELINE, args.batch, args.images, args.repeats)
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

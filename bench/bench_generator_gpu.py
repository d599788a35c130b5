"""GPU benchmark of the StyleGAN2 generator: sampling, production, training.

Writes results as JSON (one file, rewritten after every section, so a timeout keeps what
was measured). Run by bench/device_check.sh on the GPU box; runs on CPU too with tiny
sizes (that is how its logic is tested):

    python bench/bench_generator_gpu.py --out /tmp/gpu.json                  # GPU, real sizes
    python bench/bench_generator_gpu.py --out /tmp/t.json --tiny --device cpu # logic check

Sections:
- sampling: bare forward passes (bf16 synthesis, fp32 mapping) at --resolution: the earlier
  eager form (the baseline), eager with subpixel upsample-convolutions (with and without
  cudnn.benchmark), the served form (Sampler's default: subpixel and torch.compile) and,
  time allowing, torch.compile without subpixel; images/s, the multiply-adds per image
  (StyleGAN2Generator.macs_per_image), achieved TFLOP/s (2 FLOP per multiply-add) and the
  fraction of the dense bf16 peak (--peak-tflops); peak GPU memory.
- profile: the top operators of the baseline and the served forward pass by self device
  time (torch.profiler), so the next optimisation starts from where the time goes.
- reproducibility: repeat bit-identity and alone-vs-batch difference in grey levels (bf16).
- production: generate + 16-bit PNG encode + write to disk (generator.production) vs
  the bare forward pass of the same batch size, in the same process.
- training: optimiser steps/s and images/s at --train-resolution with bf16 autocast,
  GPU utilisation sampled every 50 ms (NVML via torch.cuda.utilization, else
  nvidia-smi) and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.checkpoints import save_checkpoint  # noqa: E402
from generator.config import GeneratorConfig, TrainingConfig  # noqa: E402
from generator.networks import build_generator  # noqa: E402
from generator.production import write_samples  # noqa: E402
from generator.sampling import SampleRequest, Sampler, seed_inputs  # noqa: E402

RESULTS: dict = {}


def save(path: Path) -> None:
    path.write_text(json.dumps(RESULTS, indent=2, default=str))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_forward(G, config, device, batch, seconds, dtype) -> float:
    """Images/s of the bare forward pass (latents and keys prepared on the device)."""
    inputs = [seed_inputs(s, config.latent_dim) for s in range(batch)]
    z = torch.stack([z for z, _ in inputs]).to(device)
    keys = torch.tensor([k for _, k in inputs], dtype=torch.int64, device=device)
    with torch.inference_mode():
        for _ in range(3):
            G(z, noise_keys=keys, dtype=dtype)
        sync(device)
        count, started = 0, time.perf_counter()
        while True:
            G(z, noise_keys=keys, dtype=dtype)
            count += 1
            if count % 4 == 0:
                sync(device)
                elapsed = time.perf_counter() - started
                if elapsed > seconds:
                    return count * batch / elapsed


class UtilisationSampler:
    """GPU utilisation (% of time a kernel ran) sampled in a thread."""

    def __init__(self, device: torch.device, every_s: float = 0.05) -> None:
        self.device, self.every_s, self.values, self.source = device, every_s, [], None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> float | None:
        try:
            self.source = "torch.cuda.utilization (NVML)"
            return float(torch.cuda.utilization(self.device))
        except Exception:  # noqa: BLE001 - fall back to nvidia-smi
            pass
        if shutil.which("nvidia-smi"):
            self.source = "nvidia-smi"
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5).stdout.split()
            return float(out[0]) if out else None
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self._read() if self.device.type == "cuda" else None
            if value is not None:
                self.values.append(value)
            time.sleep(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        if not self.values:
            return {"source": self.source, "samples": 0}
        v = np.asarray(self.values)
        return {"source": self.source, "samples": len(v), "mean_pct": round(float(v.mean()), 1),
                "median_pct": float(np.median(v)), "min_pct": float(v.min())}


def bench_sampling(args, device, out_json):
    config = GeneratorConfig(architecture="stylegan2", resolution=args.resolution, latent_dim=args.latent_dim,
                             base_width=args.base_width, max_width=args.max_width, mapping_layers=8)
    torch.manual_seed(0)
    G = build_generator(config)
    G.update_w_avg(512)
    macs = G.macs_per_image()
    tmp = Path(tempfile.mkdtemp())
    path = save_checkpoint(tmp / "bench.safetensors", config, G.state_dict(), half=True)
    eager = Sampler(path, device=device, compile=False)
    G = eager.generator
    dtype = torch.bfloat16 if eager.precision == "bf16" else None
    section = RESULTS["sampling"] = {
        "config": config.to_dict(), "precision": eager.precision, "macs_per_image": macs,
        "gflop_per_image": round(2 * macs / 1e9, 2), "peak_tflops_assumed": args.peak_tflops, "runs": [],
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def record(variant: str, batch: int, rate: float) -> None:
        tflops = rate * 2 * macs / 1e12
        run = {"variant": variant, "batch": batch, "images_per_s": round(rate, 1), "tflops": round(tflops, 1),
               "pct_of_peak": round(100 * tflops / args.peak_tflops, 1)}
        section["runs"].append(run)
        print("sampling", run, flush=True)
        save(out_json)

    batches = sorted({min(b, eager.max_batch) for b in args.batches})
    # Eager forms: (name, NHWC activations, grouped-conv "fused" modulation, subpixel upsampling, cudnn.benchmark)
    forms = ([("eager direct (the earlier served form)", True, False, False, False),
              ("eager subpixel", True, False, True, False),
              ("eager subpixel, cudnn.benchmark", True, False, True, True)]
             if device.type == "cuda" else [("eager grouped (CPU served form)", False, True, False, False)])
    if args.quick:  # the earlier served form at the served batch size only, as the baseline
        forms, batches = forms[:1], batches[-1:]
    for name, nhwc, fused, subpixel, autotune in forms:
        G.channels_last = nhwc
        G.set_fused_modulation(fused).set_subpixel_upsampling(subpixel)
        G.to(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
        torch.backends.cudnn.benchmark = autotune
        for batch in batches:
            record(name, batch, time_forward(G, config, device, batch, args.seconds, dtype))
    torch.backends.cudnn.benchmark = False
    G.set_subpixel_upsampling(False).set_fused_modulation(False)
    if not args.quick:
        profile_forward("eager direct", G, config, device, eager.pad_to or batches[-1], dtype, out_json)

    # The served form: what Sampler does by default (on CUDA: subpixel, compiled).
    started = time.perf_counter()
    sampler = Sampler(path, device=device, compile=device.type == "cuda" or args.compile_cpu)
    section["served"] = {"forward": sampler._provenance["forward"], "compile_error": sampler.compile_error,
                         "load_and_compile_s": round(time.perf_counter() - started, 1), "batch": sampler.pad_to}
    served = sampler.generator
    batch = sampler.pad_to or batches[-1]
    record("served: " + sampler._provenance["forward"], batch, time_forward(served, config, device, batch, args.seconds, dtype))
    if device.type == "cuda":
        section["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    section["best"] = max(section["runs"], key=lambda r: r["images_per_s"])
    if not args.quick:
        profile_forward("served", served, config, device, batch, dtype, out_json)

    # Reproducibility of the served path (Sampler.sample), bf16 on CUDA.
    alone = sampler.sample_one(7).pixels
    again = Sampler(path, device=device, compile=sampler.compiled).sample_one(7).pixels
    many = sampler.sample([SampleRequest(s) for s in (1, 2, 7, *range(100, 100 + max(1, sampler.max_batch - 3)))])
    direct = eager.sample_one(7).pixels
    RESULTS["reproducibility"] = {
        "repeat_bit_identical": bool(np.array_equal(alone, again)),
        "alone_vs_full_batch_max_grey_levels": round(float(np.abs(many[2].pixels - alone).max() * 255), 3),
        "alone_vs_full_batch_mean_grey_levels": round(float(np.abs(many[2].pixels - alone).mean() * 255), 4),
        "served_vs_eager_direct_max_grey_levels": round(float(np.abs(direct - alone).max() * 255), 3),
        "served_vs_eager_direct_mean_grey_levels": round(float(np.abs(direct - alone).mean() * 255), 4),
    }
    print("reproducibility", RESULTS["reproducibility"], flush=True)
    save(out_json)

    # Production vs bare forward, same batch size, same process, same (served) forward.
    pbatch = min(args.production_batch, sampler.max_batch)
    bare = time_forward(served, config, device, pbatch, args.seconds, dtype)
    requests = [SampleRequest(s) for s in range(pbatch * 2)]
    write_samples(sampler, requests, tmp / "warm", batch_size=pbatch, workers=args.workers)  # warm-up
    n = max(pbatch * 4, int(bare * args.seconds) // pbatch * pbatch)
    requests = [SampleRequest(s) for s in range(n)]
    started = time.perf_counter()
    write_samples(sampler, requests, tmp / "prod", batch_size=pbatch, workers=args.workers)
    rate = n / (time.perf_counter() - started)
    png_bytes = sum(p.stat().st_size for p in (tmp / "prod").glob("*.png"))
    RESULTS["production"] = {
        "batch": pbatch, "images": n, "encode_workers": args.workers, "bare_forward_images_per_s": round(bare, 1),
        "production_images_per_s": round(rate, 1), "ratio": round(rate / bare, 3),
        "mean_png_kib": round(png_bytes / n / 1024, 1), "format": "16-bit PNG, Up filter on the device, zlib run-length deflate, written to local disk",
    }
    print("production", RESULTS["production"], flush=True)
    if device.type == "cuda":
        RESULTS["sampler_peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    RESULTS["process_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    save(out_json)
    shutil.rmtree(tmp, ignore_errors=True)
    return lambda: bench_compiled_direct(args, device, out_json, G, config, dtype, batch, record, section)


def profile_forward(name, G, config, device, batch, dtype, out_json, top: int = 25) -> None:
    """Where a forward pass spends its time: the top operators by self device time (CPU time
    on a CPU), over 3 passes of the served layout at the fastest batch size."""
    from torch.profiler import ProfilerActivity, profile

    inputs = [seed_inputs(s, config.latent_dim) for s in range(batch)]
    z = torch.stack([z for z, _ in inputs]).to(device)
    keys = torch.tensor([k for _, k in inputs], dtype=torch.int64, device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    try:
        with torch.inference_mode():
            G(z, noise_keys=keys, dtype=dtype)
            sync(device)
            with profile(activities=activities) as prof:
                for _ in range(3):
                    G(z, noise_keys=keys, dtype=dtype)
                sync(device)
        events = prof.key_averages()

        def self_time(event) -> float:  # microseconds; the attribute's name changed across torch releases
            if device.type == "cuda":
                return float(getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0))
            return float(event.self_cpu_time_total)

        total = sum(self_time(e) for e in events) or 1.0
        ranked = sorted(events, key=self_time, reverse=True)[:top]
        RESULTS.setdefault("profile", {})[name] = {
            "batch": batch, "passes": 3, "clock": "device" if device.type == "cuda" else "cpu",
            "total_ms_per_pass": round(total / 3 / 1000, 2),
            "top": [{"op": e.key, "calls_per_pass": round(e.count / 3, 1), "ms_per_pass": round(self_time(e) / 3 / 1000, 3),
                     "pct": round(100 * self_time(e) / total, 1)} for e in ranked],
        }
    except Exception as exc:  # noqa: BLE001 - a profiler failure must not cost the other sections
        RESULTS.setdefault("profile", {})[name] = {"error": repr(exc)[:500]}
    print("profile", name, {k: v for k, v in RESULTS["profile"][name].items() if k != "top"}, flush=True)
    for row in RESULTS["profile"][name].get("top", [])[:12]:
        print("  ", row, flush=True)
    save(out_json)


def bench_compiled_direct(args, device, out_json, G, config, dtype, batch, record, section) -> None:
    """torch.compile without subpixel upsampling: how much each of the two changes brings."""
    if device.type == "cuda" and time.perf_counter() - T0 < args.compile_if_before_s:
        try:
            G.set_subpixel_upsampling(False)
            G.synthesis = torch.compile(G.synthesis, dynamic=False)
            started = time.perf_counter()
            time_forward(G, config, device, batch, 0.5, dtype)
            section["compile_direct_seconds"] = round(time.perf_counter() - started, 1)
            record("compiled direct", batch, time_forward(G, config, device, batch, args.seconds, dtype))
        except Exception as exc:  # noqa: BLE001 - report, don't fail the other sections
            section["compile_direct_error"] = repr(exc)[:500]
        section["best"] = max(section["runs"], key=lambda r: r["images_per_s"])
        save(out_json)


def bench_training(args, device, out_json) -> None:
    from PIL import Image

    from generator.train import train

    results = RESULTS["training"] = []
    for name, base, top in args.train_configs:
        config = GeneratorConfig(architecture="stylegan2", resolution=args.train_resolution, latent_dim=args.latent_dim // 4 if name == "demo" else args.latent_dim,
                                 base_width=base, max_width=top, mapping_layers=4 if name == "demo" else 8)
        data = Path(tempfile.mkdtemp())
        rng = np.random.default_rng(0)
        for i in range(64):
            Image.fromarray((rng.random((args.train_resolution,) * 2) * 65535).astype(np.uint16)).save(data / f"{i}.png")
        cfg = TrainingConfig(steps=10**9, batch_size=args.train_batch, lr_g=2e-3, lr_d=2e-3, betas=(0.0, 0.99),
                             r1_gamma=1.0, r1_every=16, augment="translation,cutout,brightness,contrast",
                             checkpoint_every=10**9, sample_every=10**9)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        # Warm-up run (cudnn autotuning, allocator), then the timed run.
        train(data, data / "warm", config, TrainingConfig(**{**cfg.to_dict(), "steps": 20}), device=device, progress=False)
        sync(device)
        with UtilisationSampler(device) as util:
            started = time.perf_counter()
            result = train(data, data / "run", config, cfg, device=device, progress=False, time_limit_s=args.train_seconds)
            sync(device)
            elapsed = time.perf_counter() - started
        run = {"config": name, "generator_config": config.to_dict(), "batch": args.train_batch, "steps": result.step,
               "seconds_incl_setup_and_save": round(elapsed, 1),
               "images_per_s": round(result.step * args.train_batch / elapsed, 1),
               "utilisation": util.summary(), "mixed_precision": "bf16 autocast" if device.type == "cuda" else "fp32"}
        if device.type == "cuda":
            run["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        results.append(run)
        print("training", run, flush=True)
        save(out_json)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench_generator_gpu.json")
    parser.add_argument("--device")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes for a logic check on CPU")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--quick", action="store_true", help="served form, its baseline and production only")
    parser.add_argument("--compile-if-before-s", type=float, default=240,
                        help="time torch.compile without subpixel upsampling too, if this early")
    parser.add_argument("--compile-cpu", action="store_true", help="compile the served form on CPU too (slow)")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="H100 SXM dense bf16")
    args = parser.parse_args()
    tiny = args.tiny
    args.resolution = 32 if tiny else 512
    args.latent_dim = 32 if tiny else 512
    args.base_width = 4 if tiny else 64
    args.max_width = 16 if tiny else 512
    args.batches = [2, 4] if tiny else [32, 64]
    args.seconds = 0.5 if tiny else 3.0
    args.production_batch = 4 if tiny else 64
    args.workers = 2 if tiny else min(16, os.cpu_count() or 4)
    args.train_resolution = 32 if tiny else 256
    args.train_batch = 4 if tiny else 64
    args.train_seconds = 1.0 if tiny else 12.0
    args.train_configs = [("demo", 4, 16), ("wide", 8, 32)] if tiny else [("demo", 16, 128), ("wide", 64, 512)]

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda" and not tiny:
        # `make bench` runs every script: on a machine without a GPU this one has nothing to measure.
        print("no CUDA device: nothing to measure (bench/device_check.sh runs this on a lent GPU; "
              "--tiny --device cpu checks its logic here)")
        return
    RESULTS["machine"] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
        "command": " ".join(sys.argv),
    }
    save(args.out)
    compiled_direct = bench_sampling(args, device, args.out)
    if not args.skip_training:
        bench_training(args, device, args.out)
    compiled_direct()
    RESULTS["total_seconds"] = round(time.perf_counter() - T0, 1)
    save(args.out)


T0 = time.perf_counter()

if __name__ == "__main__":
    main()

"""Bulk production: generate, encode (16-bit PNG) and store many samples, pipelined.

The device computes batch i+1 while a pool of threads compresses and writes batch i
(zlib releases the GIL). Pixels are quantised and turned into filtered PNG scanlines on
the device (generator.images.png16_scanlines), so the host threads only compress. Used
by `python -m generator sample --count N` and by the GPU benchmark
(bench/bench_generator_gpu.py). These files are the generator's output, never what a
reader is shown: the site passes every image, real or synthetic, through its one
presentation encoder (readerstudy/archive/encoding.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .images import png16_file, png16_scanlines
from .sampling import SampleRequest, Sampler


def write_samples(
    sampler: Sampler,
    requests: Sequence[SampleRequest],
    out_dir: str | Path,
    *,
    batch_size: int | None = None,
    workers: int = 8,
    compress_level: int = 1,
) -> list[Path]:
    """Write seed-<seed>.png (16-bit) for every request plus provenance.jsonl; returns the PNG paths.

    With a privacy screen on the sampler, refused images are not written; their
    provenance lines say so (and sampler.refused counts them).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch_size = min(batch_size or sampler.max_batch, sampler.pad_to or 10**9)
    for request in requests:
        sampler._validate(request)
    cuda = sampler.device.type == "cuda"
    provenance: list[dict] = []
    paths: list[Path | None] = []

    def encode(request: SampleRequest, lines: np.ndarray, levels: np.ndarray | None) -> tuple[Path | None, dict]:
        record = sampler._provenance | {"seed": request.seed, "label": request.label,
                                        "truncation": float(request.truncation), "batch_size": sampler.pad_to or batch_size}
        screen = sampler.privacy_screen
        if screen is not None:
            ok, score = screen.check(levels.astype(np.float32) / 65535.0)
            record["privacy"] = {"score": round(float(score), 6), "threshold": screen.threshold, "passed": bool(ok)}
            if not ok:
                return None, record
        path = out / f"seed-{request.seed}.png"
        path.write_bytes(png16_file(lines, compress_level))
        record["file"] = path.name
        return path, record

    def to_host(tensor: torch.Tensor) -> torch.Tensor:
        if not cuda:
            return tensor
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        return host.copy_(tensor, non_blocking=True)

    def finish(pending: tuple) -> list:
        chunk, lines, levels, event = pending
        if event is not None:
            event.synchronize()
        levels = [None] * len(chunk) if levels is None else levels.numpy()
        return [pool.submit(encode, request, image, grey) for request, image, grey in zip(chunk, lines.numpy(), levels)]

    futures = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = None
        for start in range(0, len(requests), batch_size):
            chunk = requests[start:start + batch_size]
            with torch.inference_mode():
                images = sampler.generate_tensor(chunk)[:, 0]
                levels = ((images.float() + 1.0) * 32767.5).round_().clamp_(0, 65535).to(torch.int32)
                lines = to_host(png16_scanlines(levels))
                levels = to_host(levels) if sampler.privacy_screen is not None else None
            event = None
            if cuda:
                event = torch.cuda.Event()
                event.record()
            if pending is not None:
                futures += finish(pending)
            pending = (chunk, lines, levels, event)
        if pending is not None:
            futures += finish(pending)
        for future in futures:
            path, record = future.result()
            paths.append(path)
            provenance.append(record)
    refused = sum(1 for p in paths if p is None)
    sampler.refused += refused
    with open(out / "provenance.jsonl", "w") as f:
        for record in provenance:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    return [p for p in paths if p is not None]

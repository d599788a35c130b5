"""Deterministic sampling from a checkpoint, with provenance for every image.

Determinism: each request's latent comes from its own CPU torch.Generator seeded with the
request's seed, so it does not depend on which other requests share the batch or on the
device. The same seed therefore gives bit-identical pixels on a repeat run on the same
device and batch size, and (because batched kernels may sum in a different order) pixels
within one grey level (1/255) when the request is batched with others. The Sampler goes
further where it can: on CPU it runs one image per forward pass (every architecture), and
for StyleGAN2 on CUDA it pads every forward pass to one fixed batch size (`pad_to`), so a
seed's pixels are bit-identical whatever its batch mates (measured on an H100: 0 grey
levels apart). DCGAN and ONNX models on CUDA batch freely (within one grey level).

StyleGAN2 checkpoints: the same seeded generator that draws z then draws the sample's
32-bit noise key, from which every noise input is hashed on the device (see
generator/stylegan2.py), so noise too depends on the seed alone. On CUDA the synthesis
runs in bf16 (mapping, styles and demodulation stay fp32), every upsample-and-convolve
runs as one low-resolution convolution into four phases (stylegan2.upsample_conv3x3), and
the synthesis network is compiled with torch.compile for the one padded batch shape (3.8x
the eager forward pass on an H100; README, Benchmarks). On CPU everything is fp32 and
modulation uses one grouped convolution per layer (faster there). These forms are the same
maths rounded differently, so each image's provenance names its form ("forward").

Truncation: DCGAN latents are standard normal, whose mean is 0, so truncating towards
the mean latent is simply z * truncation (1 = no truncation, 0 = the mean image).
StyleGAN2 truncates w towards the requested class's average w (stored in the checkpoint).

Concurrency: `Sampler.sample` runs one forward pass per chunk of up to `max_batch`
requests. `BatchingSampler` wraps a Sampler with a worker thread so that requests from
many threads (readers) are gathered into one forward pass; its `sample` stays synchronous.

Bring your own: a path ending in .onnx is served through generator/byo.py (ONNX
`(z, label) -> image`, latents drawn from the seed as above; truncation scales z).

Privacy: with `privacy_screen=` (a generator.privacy.PrivacyScreen or the path of one),
every image is checked against the training set before it is returned. A refused image
is not returned: `sample` raises `PrivacyRefusal`, which names the refused seeds (and
carries the images that passed), so the caller can ask for replacement seeds. The
refusal count is kept in `Sampler.refused`. `replacement_seed(seed, attempt)` is the
agreed sequence of replacements, so a screened image is as reproducible as any other: it
is the first of seed, replacement_seed(seed, 1), ... that the screen passes.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .checkpoints import checkpoint_sha256, load_checkpoint
from .networks import build_generator

MAX_SEED = 2**63 - 1
INT_MAX = 2**31 - 1  # some CUDA kernels (NHWC bilinear upsampling) index tensors with int32


@dataclass(frozen=True)
class SampleRequest:
    seed: int
    label: int | None = None
    truncation: float = 1.0


@dataclass(frozen=True)
class SampleResult:
    pixels: np.ndarray  # float32 HxW in [0, 1]
    provenance: dict[str, Any]
    # The network's output on the same scale before clipping to [0, 1] (None where the source
    # has no such output). A site's presentation step takes this one: saturation is then decided
    # by its percentile window, as for every real image, and not by where this clip fell.
    unclipped: np.ndarray | None = None


def to_unit_scale(images: torch.Tensor) -> np.ndarray:
    """(B, 1, R, R) network output in [-1, 1] as (B, R, R) float32 on [0, 1]'s scale, unclipped."""
    return (images[:, 0].float().cpu().numpy() + 1.0) / 2.0


def validate_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")


def replacement_seed(seed: int, attempt: int) -> int:
    """The seed to try after `attempt` refusals by the privacy screen (attempt 0: the seed itself).

    Derived by hashing, not by counting up, so replacements of nearby seeds do not collide.
    """
    if attempt == 0:
        return seed
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1, dtype=np.uint64)[0] >> 33)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def latent_for_seed(seed: int, latent_dim: int) -> torch.Tensor:
    """The (latent_dim,) float32 standard-normal latent of a seed, always drawn on CPU."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(latent_dim, generator=generator)


def seed_inputs(seed: int, latent_dim: int) -> tuple[torch.Tensor, int]:
    """A seed's latent (as latent_for_seed) and, drawn next from the same generator, its noise key."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(latent_dim, generator=generator)
    key = int(torch.randint(0, 2**32, (1,), generator=generator, dtype=torch.int64))
    return z, key


class PrivacyRefusal(RuntimeError):
    """Some requested images were refused by the privacy screen (too close to a training image)."""

    def __init__(self, refused: list[SampleResult], accepted: list[SampleResult], results: list[SampleResult]) -> None:
        self.refused, self.accepted = refused, accepted
        self.results = results  # all of them, in request order; provenance["privacy"]["passed"] tells which
        seeds = [r.provenance["seed"] for r in refused]
        super().__init__(f"privacy screen refused {len(refused)} image(s), seeds {seeds}: too similar to a "
                         "training image; request replacement seeds")


class Sampler:
    """Loads a checkpoint once and turns SampleRequests into images.

    Release and training checkpoints both work (the latter's EMA weights are used).
    Weights are upcast to fp32; the network runs in eval mode under inference_mode.
    """

    max_batch = 64  # requests per forward pass; bounds memory for long request lists

    def __init__(self, checkpoint_path: str | os.PathLike[str], device: str | torch.device | None = None, *,
                 precision: str | None = None, privacy_screen: Any = None, compile: bool | None = None) -> None:
        """precision: "bf16" or "fp32"; default bf16 for StyleGAN2 on CUDA, else fp32.

        compile: torch.compile the StyleGAN2 synthesis network (default: on CUDA when
        Triton is installed). It is compiled here, for the one padded batch shape, so a
        worker pays the compile time (tens of seconds) before its first request; if
        compiling fails the Sampler stays eager and says why in `compile_error`.
        """
        self.checkpoint_path = Path(checkpoint_path)
        self.device = pick_device(device)
        external = self.checkpoint_path.suffix.lower() == ".onnx"  # bring your own (generator/byo.py)
        if external:
            from .byo import OnnxGenerator

            onnx_generator = OnnxGenerator(self.checkpoint_path, self.device)
            self.config = onnx_generator.config
        else:
            checkpoint = load_checkpoint(self.checkpoint_path)
            self.config = checkpoint.config
        self.stylegan = self.config.architecture == "stylegan2"
        if precision is None:
            precision = "bf16" if self.stylegan and self.device.type == "cuda" else "fp32"
        if precision not in ("bf16", "fp32") or (precision == "bf16" and not self.stylegan):
            raise ValueError(f"precision must be 'fp32' (or 'bf16' for StyleGAN2), got {precision!r}")
        self.precision = precision
        self._dtype = torch.bfloat16 if precision == "bf16" else None
        if external:
            self.generator = onnx_generator
        else:
            self.generator = build_generator(self.config)
            self.generator.load_state_dict({k: v.float() for k, v in checkpoint.generator.items()})
            self.generator.to(self.device).eval().requires_grad_(False)
        self.pad_to: int | None = None
        if self.device.type == "cpu":
            # One image per forward pass: a seed's pixels then never depend on its batch
            # mates, so a study's stored images rebuild bit for bit. For StyleGAN2 with
            # grouped-conv modulation this is also the fastest on a 2-core CPU
            # (bench/bench_generator.py).
            self.max_batch = 1
            if self.stylegan:
                self.generator.set_fused_modulation(True)
        elif self.stylegan and self.device.type == "cuda":
            # NHWC activations for the tensor cores, and every forward pass padded to one
            # fixed batch size: the same kernels then run whatever the batch composition,
            # and no kernel mixes samples, so a seed's pixels do not depend on its batch
            # mates (bf16 rounding otherwise moves them by a few grey levels).
            # Upsample-and-convolve as one low-resolution convolution: fewer passes over
            # the largest activations (bench/bench_generator_gpu.py).
            self.generator.to(memory_format=torch.channels_last)
            self.generator.channels_last = True
            self.generator.set_subpixel_upsampling(True)
            self.max_batch = self.pad_to = max(1, min(64, INT_MAX // self.generator.max_activation_elements()))
        self.privacy_screen = _load_screen(privacy_screen)
        self.refused = 0
        self.compiled, self.compile_error = False, None
        if compile is None:
            compile = self.stylegan and self.device.type == "cuda" and _has_triton()
        if compile:
            if not self.stylegan:
                raise ValueError("compile is for StyleGAN2 checkpoints")
            self._compile()
        self._provenance = {
            "checkpoint_name": self.checkpoint_path.name,
            "checkpoint_sha256": checkpoint_sha256(self.checkpoint_path),
            "architecture": self.config.architecture,
            "resolution": self.config.resolution,
            "device": str(self.device),
            "precision": precision,
            "generator_version": __version__,
            "torch_version": torch.__version__,
        }
        if self.stylegan:
            forward = self.generator.forward_form() + ("+torch.compile" if self.compiled else "")
            self._provenance |= {"noise": "seeded-hash-v1", "truncation_centre": "class w_avg", "forward": forward}

    def _compile(self) -> None:
        eager = self.generator.synthesis
        self.generator.synthesis = torch.compile(eager, dynamic=False)
        try:
            self.generate_tensor([SampleRequest(0, 0 if self.config.num_classes else None)])  # compiles now
            self.compiled = True
        except Exception as exc:  # noqa: BLE001 - eager still works; the reason is kept
            self.generator.synthesis = eager
            self.compile_error = f"{type(exc).__name__}: {exc}"[:500]

    def sample(self, requests: Sequence[SampleRequest]) -> list[SampleResult]:
        for request in requests:
            self._validate(request)
        results: list[SampleResult] = []
        for start in range(0, len(requests), self.max_batch):
            chunk = requests[start:start + self.max_batch]
            unclipped = self._generate(chunk)
            for request, image in zip(chunk, unclipped):
                provenance = self._provenance | {
                    "seed": request.seed,
                    "label": request.label,
                    "truncation": float(request.truncation),
                    "batch_size": self.pad_to or len(chunk),
                }
                results.append(SampleResult(pixels=image.clip(0.0, 1.0), provenance=provenance, unclipped=image))
        if self.privacy_screen is not None:
            results = self._screen(results)
        return results

    def sample_one(self, seed: int, label: int | None = None, truncation: float = 1.0) -> SampleResult:
        return self.sample([SampleRequest(seed, label, truncation)])[0]

    def _screen(self, results: list[SampleResult]) -> list[SampleResult]:
        accepted, refused = [], []
        for result in results:
            ok, score = self.privacy_screen.check(result.pixels)
            result.provenance["privacy"] = {"score": round(float(score), 6), "threshold": self.privacy_screen.threshold,
                                            "passed": bool(ok)}
            (accepted if ok else refused).append(result)
        if refused:
            self.refused += len(refused)
            raise PrivacyRefusal(refused, accepted, results)
        return accepted

    def generate_tensor(self, requests: Sequence[SampleRequest]) -> torch.Tensor:
        """The raw forward pass: (B, 1, R, R) images in [-1, 1] (unclamped) on the device."""
        latents = [seed_inputs(r.seed, self.config.latent_dim) for r in requests]
        labels = None
        if self.config.num_classes:
            labels = torch.tensor([r.label for r in requests], dtype=torch.int64, device=self.device)
        with torch.inference_mode():
            if not self.stylegan:
                z = torch.stack([z * r.truncation for (z, _), r in zip(latents, requests)])
                return self.generator(z.to(self.device), labels)
            z = torch.stack([z for z, _ in latents]).to(self.device)
            keys = torch.tensor([k for _, k in latents], dtype=torch.int64, device=self.device)
            truncation = torch.tensor([float(r.truncation) for r in requests], device=self.device)
            # Padded here already, so that the mapping network too sees one batch size.
            z, keys, truncation = self._padded(z), self._padded(keys), self._padded(truncation)
            labels = None if labels is None else self._padded(labels)
            w = self.generator.map(z, labels, truncation)
            return self.synthesize(w, keys)[:len(requests)]

    def synthesize(self, w: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """StyleGAN2 synthesis of (B, w_dim) styles with their noise keys, on the device: in
        chunks of max_batch, each padded to pad_to, so the compiled graph sees one shape and
        no image depends on its batch mates."""
        images = []
        with torch.inference_mode():
            for start in range(0, w.shape[0], self.max_batch):
                chunk_w, chunk_keys = w[start:start + self.max_batch], keys[start:start + self.max_batch]
                images.append(self.generator.synthesis(self._padded(chunk_w), self._padded(chunk_keys),
                                                       self._dtype)[:chunk_w.shape[0]])
        return torch.cat(images)

    def _padded(self, rows: torch.Tensor) -> torch.Tensor:
        """`rows` followed by copies of its first row up to pad_to rows (unchanged without pad_to)."""
        missing = (self.pad_to or 0) - rows.shape[0]
        if missing <= 0:
            return rows
        return torch.cat([rows, rows[:1].expand(missing, *rows.shape[1:])])

    def _generate(self, requests: Sequence[SampleRequest]) -> np.ndarray:
        """(B, R, R) float32 images on the unit scale, not yet clipped to [0, 1]."""
        return to_unit_scale(self.generate_tensor(requests))

    def _validate(self, request: SampleRequest) -> None:
        validate_seed(request.seed)
        if not (math.isfinite(request.truncation) and 0.0 <= request.truncation <= 1.0):
            raise ValueError(f"truncation must be in [0, 1], got {request.truncation!r}")
        if self.config.num_classes:
            if not isinstance(request.label, int) or not 0 <= request.label < self.config.num_classes:
                raise ValueError(f"label must be an integer in 0..{self.config.num_classes - 1}, got {request.label!r}")
        elif request.label is not None:
            raise ValueError("this checkpoint is unconditional: label must be None")


def _has_triton() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _load_screen(screen: Any) -> Any:
    if screen is None or hasattr(screen, "check"):
        return screen
    from .privacy import PrivacyScreen

    return PrivacyScreen.load(screen)


class BatchingSampler:
    """Gathers requests from many threads into shared forward passes.

    `submit` returns a Future at once; a worker thread takes whatever requests are
    waiting (up to `sampler.max_batch`, waiting at most `max_wait_s` for more once it
    has one) and runs them as one batch. `sample` is synchronous: it submits its
    requests and waits for them. Results equal `Sampler.sample`'s up to the batch
    composition (see the module docstring: bit-identical for the same batch, within one
    grey level otherwise). A privacy refusal fails only the refused request's future.
    """

    def __init__(self, sampler: Sampler, max_wait_s: float = 0.005) -> None:
        self.sampler = sampler
        self.max_wait_s = max_wait_s
        self.batches = 0  # forward passes run, for monitoring
        self._queue: queue.Queue[tuple[SampleRequest, Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="generator-batching", daemon=True)
        self._thread.start()

    @property
    def config(self):  # noqa: ANN201 - same as the wrapped sampler's
        return self.sampler.config

    def submit(self, request: SampleRequest) -> Future:
        self.sampler._validate(request)  # fail the caller at once, not the whole batch
        future: Future = Future()
        self._queue.put((request, future))
        return future

    def sample(self, requests: Sequence[SampleRequest]) -> list[SampleResult]:
        futures = [self.submit(r) for r in requests]
        return [f.result() for f in futures]

    def sample_one(self, seed: int, label: int | None = None, truncation: float = 1.0) -> SampleResult:
        return self.sample([SampleRequest(seed, label, truncation)])[0]

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def __enter__(self) -> BatchingSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.sampler.max_batch:
                try:
                    nxt = self._queue.get(timeout=self.max_wait_s)
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[tuple[SampleRequest, Future]]) -> None:
        self.batches += 1
        try:
            results = self.sampler.sample([r for r, _ in batch])
        except PrivacyRefusal as refusal:
            for (_, future), result in zip(batch, refusal.results):
                if result.provenance["privacy"]["passed"]:
                    future.set_result(result)
                else:
                    future.set_exception(PrivacyRefusal([result], [], [result]))
            return
        except BaseException as exc:  # noqa: BLE001 - hand every failure to the callers
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)


"""Safetensors checkpoints with the JSON config in the file's metadata; never pickles.

Two kinds share one format:
- "release": only the weights to sample with (the generator EMA), optionally fp16.
- "training": additionally G, D, both Adam states, the step and the RNG states, so a
  run can resume exactly. Its "generator" weights are the EMA too, so a training
  checkpoint can also be sampled from.

Tensor names are namespaced: "generator/<param>", "train/g/<param>", "train/d/<param>",
"train/opt_g/<index>/<key>", "train/opt_d/<index>/<key>", "train/rng/<name>".
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from . import __version__
from .config import GeneratorConfig, TrainingConfig
from .networks import build_discriminator, build_generator

FORMAT = "readerstudy-generator"
FORMAT_VERSION = "1"
KINDS = ("release", "training")


class CheckpointError(ValueError):
    """A file is not a usable generator checkpoint."""


@dataclass
class TrainingState:
    """Everything beyond the sampling weights that a resumed run needs."""

    config: TrainingConfig
    step: int
    g: dict[str, torch.Tensor]
    d: dict[str, torch.Tensor]
    opt_g: dict[str, Any]  # torch.optim state_dict() of Adam
    opt_d: dict[str, Any]
    rng: dict[str, torch.Tensor]  # torch.Generator states (uint8 tensors)


@dataclass
class Checkpoint:
    kind: str
    config: GeneratorConfig
    generator: dict[str, torch.Tensor]  # weights to sample with, in the dtype stored
    metadata: dict[str, str]
    training: TrainingState | None = None


def checkpoint_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str],
    config: GeneratorConfig,
    generator: Mapping[str, torch.Tensor],
    *,
    training: TrainingState | None = None,
    half: bool = False,
) -> Path:
    """Write a release checkpoint, or a training one when `training` is given.

    `half` stores the generator weights as fp16 (release files only: a resumable
    checkpoint must keep full precision). The file is written atomically.
    """
    if half and training is not None:
        raise ValueError("training checkpoints keep fp32 weights; half=True is for release files")
    dtype = torch.float16 if half else None
    tensors = _prefixed("generator/", generator, dtype)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "training" if training else "release",
        "generator_config": config.to_json(),
        "package_version": __version__,
    }
    if training is not None:
        tensors |= _prefixed("train/g/", training.g)
        tensors |= _prefixed("train/d/", training.d)
        tensors |= _prefixed("train/rng/", training.rng)
        for name, opt_state in (("opt_g", training.opt_g), ("opt_d", training.opt_d)):
            opt_tensors, groups = _flatten_optimizer(opt_state)
            tensors |= _prefixed(f"train/{name}/", opt_tensors)
            metadata[f"{name}_param_groups"] = json.dumps(groups)
        metadata["training_config"] = training.config.to_json()
        metadata["step"] = str(training.step)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)  # safetensors creates files owner-only; the site may run as another user
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and validate a checkpoint; tensors come back on CPU exactly as stored."""
    path = Path(path)
    _check_safetensors_magic(path)
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        tensors = {key: f.get_tensor(key) for key in f.keys()}

    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: safetensors file is not a {FORMAT} checkpoint (metadata 'format' missing)")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path.name}: unsupported format_version {metadata.get('format_version')!r}")
    kind = metadata.get("kind")
    if kind not in KINDS:
        raise CheckpointError(f"{path.name}: unknown checkpoint kind {kind!r}")
    try:
        config = GeneratorConfig.from_json(metadata["generator_config"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path.name}: invalid generator_config: {exc}") from exc

    generator = _section(tensors, "generator/")
    _check_weights(path, "generator", generator, build_generator, config)
    training = None
    if kind == "training":
        try:
            training = TrainingState(
                config=TrainingConfig.from_json(metadata["training_config"]),
                step=int(metadata["step"]),
                g=_section(tensors, "train/g/"),
                d=_section(tensors, "train/d/"),
                opt_g=_unflatten_optimizer(_section(tensors, "train/opt_g/"), metadata["opt_g_param_groups"]),
                opt_d=_unflatten_optimizer(_section(tensors, "train/opt_d/"), metadata["opt_d_param_groups"]),
                rng=_section(tensors, "train/rng/"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path.name}: incomplete training checkpoint: {exc}") from exc
        _check_weights(path, "G", training.g, build_generator, config)
        _check_weights(path, "D", training.d, build_discriminator, config)
    return Checkpoint(kind=kind, config=config, generator=generator, metadata=metadata, training=training)


def _check_safetensors_magic(path: Path) -> None:
    """Refuse pickles and torch.save archives up front, with a message saying what the file is.

    A safetensors file starts with a little-endian u64 header length followed by a JSON
    object; torch.save writes a zip archive ("PK") or, in its legacy format, a raw pickle
    (protocol opcode 0x80).
    """
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if head.startswith(b"PK\x03\x04"):
        raise CheckpointError(
            f"{path.name} is a zip archive (e.g. torch.save output), not safetensors; "
            "refusing to load it because it may contain pickled code"
        )
    if head[:1] == b"\x80":
        raise CheckpointError(f"{path.name} is a Python pickle, not safetensors; refusing to unpickle it")
    if len(head) < 9 or head[8:9] != b"{" or struct.unpack("<Q", head[:8])[0] > size - 8:
        raise CheckpointError(f"{path.name} is not a safetensors file")


def _check_weights(
    path: Path, what: str, weights: Mapping[str, torch.Tensor], network: Any, config: GeneratorConfig
) -> None:
    """The stored config must describe exactly the stored tensors (names and shapes)."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in network(config).state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if found == expected:
        return
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
    details = "; ".join(
        f"{label}: {names[:5]}" for label, names in
        (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if names
    )
    raise CheckpointError(f"{path.name}: {what} weights do not match the stored config {config.to_dict()} ({details})")


def _prefixed(prefix: str, tensors: Mapping[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Namespaced CPU copies; copying means sections never share memory (safetensors refuses that)."""
    return {
        prefix + key: value.detach().to("cpu", dtype=dtype if value.is_floating_point() else None, copy=True).contiguous()
        for key, value in tensors.items()
    }


def _section(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _flatten_optimizer(state_dict: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split an optimizer state_dict into tensors ("<param index>/<key>") and JSON param groups."""
    tensors = {}
    for index, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {key!r} is not a tensor; only Adam-style states are supported")
            tensors[f"{index}/{key}"] = value
    return tensors, list(state_dict["param_groups"])


def _unflatten_optimizer(tensors: Mapping[str, torch.Tensor], groups_json: str) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        index, key = name.split("/", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": json.loads(groups_json)}

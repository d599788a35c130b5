"""Bring your own generator: a model trained elsewhere, exported to ONNX, served by `Sampler`.

The ONNX file must have the signature `(z, label) -> image`:
- input `z`: float32 (B, latent_dim), drawn by the Sampler from the seed exactly as for
  our own checkpoints (standard normal; truncation scales z towards 0, its mean);
- input `label` (only for a conditional model): int64 (B,);
- output: float32 (B, 1, R, R) or (B, R, R), in [-1, 1], or in [0, 1] when the model's
  metadata says `output_range` = `0,1`.
Model metadata (`metadata_props`, set with onnx.helper.set_model_props) may give
`num_classes` (required for a conditional model) and `resolution` (when the output
shape is symbolic).

Why ONNX and not TorchScript: an ONNX file is a protobuf graph of standard operators,
read by onnxruntime without any Python unpickling. A TorchScript archive stores its
constants and module state as pickles (`data.pkl`, `constants.pkl`) that `torch.jit.load`
must unpickle and whose code it then runs; that is the kind of loading this project
refuses (see generator/checkpoints.py), so TorchScript files are not accepted: export
them to ONNX (`torch.onnx.export`) instead.

Needs `onnxruntime` (CPU, or onnxruntime-gpu for CUDA).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class ExternalConfig:
    """What the Sampler needs to know about a bring-your-own model."""

    resolution: int
    latent_dim: int
    num_classes: int = 0
    architecture: str = "onnx"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OnnxGenerator:
    """Callable like our generators: (z tensor, labels tensor | None) -> (B, 1, R, R) in [-1, 1]."""

    def __init__(self, path: str | os.PathLike[str], device: torch.device) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError("ONNX generators need onnxruntime: pip install onnxruntime") from exc
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), providers=providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        inputs = {i.name: i for i in self.session.get_inputs()}
        if "z" not in inputs:
            raise ValueError(f"{Path(path).name}: the ONNX model needs an input named 'z', has {sorted(inputs)}")
        latent_dim = inputs["z"].shape[-1]
        if not isinstance(latent_dim, int):
            raise ValueError(f"{Path(path).name}: input z needs a fixed last dimension (latent_dim)")
        self.conditional = "label" in inputs
        num_classes = int(meta.get("num_classes", 0))
        if self.conditional and num_classes < 1:
            raise ValueError(f"{Path(path).name}: a model with a 'label' input needs metadata num_classes")
        output = self.session.get_outputs()[0]
        resolution = output.shape[-1] if isinstance(output.shape[-1], int) else int(meta.get("resolution", 0))
        if resolution < 1:
            raise ValueError(f"{Path(path).name}: set metadata 'resolution' (the output shape is symbolic)")
        self.unit_range = meta.get("output_range", "-1,1").replace(" ", "") == "0,1"
        self.output_name = output.name
        self.config = ExternalConfig(resolution=resolution, latent_dim=latent_dim, num_classes=num_classes)
        self.device = device

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        feeds = {"z": z.detach().float().cpu().numpy()}
        if self.conditional:
            if labels is None:
                raise ValueError("this generator is conditional: labels are required")
            feeds["label"] = labels.detach().cpu().numpy().astype(np.int64)
        (images,) = self.session.run([self.output_name], feeds)
        images = torch.from_numpy(np.asarray(images, dtype=np.float32))
        if images.ndim == 3:
            images = images.unsqueeze(1)
        if self.unit_range:
            images = images * 2.0 - 1.0
        return images.to(self.device)

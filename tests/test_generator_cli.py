"""python -m generator: render-ct, sample (single and grid)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

nib = pytest.importorskip("nibabel")  # not installed on every GPU box

from generator.__main__ import main
from generator.checkpoints import save_checkpoint
from generator.config import GeneratorConfig
from generator.networks import Generator


def test_render_ct_writes_the_requested_archive(tmp_path):
    hu = np.full((24, 20, 24), -1000.0, np.float32)
    hu[4:20, 4:16, :] = 0.0
    ct = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(hu, np.diag([8.0, 8.0, 8.0, 1.0])), ct)
    assert main(["render-ct", "--ct", str(ct), "--out", str(tmp_path / "a"), "--count", "2", "--size", "32"]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["demo-0000.png", "demo-0001.png"]


def test_sample_single_and_grid(tmp_path, capsys):
    config = GeneratorConfig(resolution=32, latent_dim=16, base_width=4, max_width=16)
    checkpoint = save_checkpoint(tmp_path / "g.safetensors", config, Generator(config).state_dict())

    assert main(["sample", "--checkpoint", str(checkpoint), "--seed", "3", "--out", str(tmp_path / "one.png"),
                 "--device", "cpu"]) == 0
    provenance = json.loads(capsys.readouterr().out)
    assert provenance["seed"] == 3 and provenance["checkpoint_name"] == "g.safetensors"
    with Image.open(tmp_path / "one.png") as im:
        assert im.mode == "I;16" and im.size == (32, 32)

    assert main(["sample", "--checkpoint", str(checkpoint), "--grid", "4", "--out", str(tmp_path / "grid.png"),
                 "--device", "cpu"]) == 0
    with Image.open(tmp_path / "grid.png") as im:
        assert im.mode == "L" and im.size == (66, 66)

"""The medical recipes: valid configs, held-out files kept out, and (slow) 3 training steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from restore.engine.config import load_toml
from restore.training import build_trainer, resolve_config

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ["medical-ct-denoise", "medical-mr-denoise", "medical-mr-sr-x2"]
HELD_OUT = {"ct4.png", "MNI152_2009_template.nii.gz", "oasis_mni.nii.gz", "mr4.png", "mni.nii.gz"}
SHARED = ROOT.parent / "shared" / "data" / "medical"


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_resolves_and_keeps_the_held_out_files_out(name: str) -> None:
    path = ROOT / "weights" / "recipes" / f"{name}.toml"
    config = resolve_config("medical", str(path), {})
    options = config.task_options
    assert config.generator["extra_channels"] == 2 * options["context"]
    assert config.generator["upscale"] == (options["scale"] if options["degradation"] == "kspace" else 1)
    used = {Path(item).name for item in config.data.train} | {Path(config.data.val).name if config.data.val else ""}
    assert not used & HELD_OUT
    assert Path(config.data.val).name not in {Path(item).name for item in config.data.train}
    assert load_toml(path)["task"] == "medical"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/medical is not available")
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_trains_three_steps(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # recipes name ../shared relative to the repository root
    tiny = {"steps": 3, "device": "cpu", "data": {"batch_size": 2, "crop": 32, "workers": 0},
            "log": {"tensorboard": False}}
    config = resolve_config("medical", str(ROOT / "weights" / "recipes" / f"{name}.toml"), tiny)
    build_trainer(config, tmp_path / "run", progress=False).fit()
    assert (tmp_path / "run" / "last.safetensors").is_file()

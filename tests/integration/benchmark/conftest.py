"""A tiny benchmark grid run once per session through the real Engine: 2 models x Phantom x k=2 x 2 seeds."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

PHANTOM = {
    "modality": "brain",
    "n_train": 6,
    "n_test_normal": 3,
    "n_test_abnormal": 3,
    "image_size": 64,
    "train_batch_size": 2,
    "eval_batch_size": 6,
}
PATCHCORE = {
    "name": "PatchCore",
    "class_path": "anomalib.models.Patchcore",
    "init_args": {"backbone": "resnet18", "layers": ["layer2", "layer3"], "coreset_sampling_ratio": 0.05},
}
FUSIONMEDCLIP = {
    "name": "FusionMedCLIP",
    "class_path": "fusionmedclip_anomalib.FusionMedCLIP",
    "init_args": {"backbone": "fmc-tiny", "feature_layers": [2, 4, 6], "max_epochs": 1},
}


def tiny_config(phantom_root: Path, models: list[dict] | None = None, seeds: list[int] | None = None) -> dict:
    """The tiny grid as plain data."""
    return {
        "name": "tiny",
        "k_shots": [2],
        "seeds": seeds or [0, 1],
        "weights": "random",
        "evaluation": {"image_size": 64, "gallery_size": 2},
        "models": models or [PATCHCORE, FUSIONMEDCLIP],
        "datasets": [
            {
                "name": "phantom",
                "class_path": "fusionmedclip_anomalib.data.Phantom",
                "init_args": {**PHANTOM, "root": str(phantom_root)},
            }
        ],
    }


def write_config(path: Path, data: dict) -> Path:
    """Write a config file."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class TinyGrid:
    """The session's finished tiny grid."""

    config: Path
    output: Path
    phantom_root: Path
    exit_code: int

    def copy_output(self, target: Path) -> Path:
        """A private copy of the results folder, for tests that change it."""
        shutil.copytree(self.output, target)
        return target


@pytest.fixture(scope="session")
def tiny_grid(tmp_path_factory: pytest.TempPathFactory) -> TinyGrid:
    from fusionmedclip_anomalib.benchmark import cli

    root = tmp_path_factory.mktemp("tiny-grid")
    config = write_config(root / "tiny.yaml", tiny_config(root / "phantom"))
    exit_code = cli.main([str(config), "--output", str(root / "out")])
    return TinyGrid(config, root / "out", root / "phantom", exit_code)


class RunCounter:
    """Counts the runs the runner actually executes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from fusionmedclip_anomalib.benchmark import run

        self.run_ids: list[str] = []
        original = run.execute_run

        def counting(spec):
            self.run_ids.append(spec.run_id)
            return original(spec)

        monkeypatch.setattr(run, "execute_run", counting)


@pytest.fixture
def run_counter(monkeypatch: pytest.MonkeyPatch) -> RunCounter:
    return RunCounter(monkeypatch)

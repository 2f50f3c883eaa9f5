"""The bench and leaderboard commands: fast to start, usage errors, listing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fusionmedclip_anomalib.benchmark import cli, leaderboard_cli


@pytest.mark.parametrize("module", ["cli", "leaderboard_cli"])
def test_command_modules_import_without_torch_or_anomalib(module: str) -> None:
    code = (
        f"import sys, fusionmedclip_anomalib.benchmark.{module} as m; "
        "heavy = [n for n in ('torch', 'anomalib', 'lightning', 'pandas', 'matplotlib') if n in sys.modules]; "
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_help_and_bad_arguments(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as leave:
        cli.main(["--help"])
    assert leave.value.code == 0
    assert "fusionmedclip bench" in capsys.readouterr().out
    with pytest.raises(SystemExit) as leave:
        cli.main(["--runner", "slurm"])
    assert leave.value.code == 2
    with pytest.raises(SystemExit) as leave:
        leaderboard_cli.main(["--help"])
    assert leave.value.code == 0


def test_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main([str(tmp_path / "missing.yaml")]) == 2
    assert "No config file" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"models": [{"name": "x"}], "datasets": []}))
    assert cli.main([str(broken)]) == 2
    assert "class_path" in capsys.readouterr().err
    assert cli.main(["--check", str(tmp_path / "nope.csv")]) == 2


def test_list_shows_the_grid_without_running(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["demo", "--output", str(tmp_path), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 16
    assert lines[0] == "FusionMedCLIP__phantom-brain__k4__s0__random\tto run"
    assert not (tmp_path / "runs").exists()


def test_leaderboard_of_an_empty_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert leaderboard_cli.main([str(tmp_path)]) == 2
    assert "no run records" in capsys.readouterr().err


def test_no_config_argument_lists_the_packaged_demo(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--output", str(tmp_path), "--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 16

"""The fusionmedclip command: fast start, usage, unknown commands."""

import subprocess
import sys

from fusionmedclip_anomalib.cli import main


def test_help_lists_commands_without_heavy_imports():
    code = (
        "import sys; from fusionmedclip_anomalib.cli import main; main(['--help']); "
        "heavy = [m for m in ('torch', 'anomalib.models', 'open_clip', 'lightning') if m in sys.modules]; "
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "bench" in out and "HEAVY []" in out


def test_unknown_command_exits_2(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err

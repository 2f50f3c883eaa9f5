"""The `fusionmedclip pretrain` entry module stays light to import."""

import subprocess
import sys


def test_importing_the_cli_module_loads_neither_torch_nor_lightning():
    code = (
        "import sys, fusionmedclip_anomalib.models.rococlip.cli as cli; "
        "assert callable(cli.main); print(sorted(m for m in ('torch', 'lightning', 'open_clip') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

"""Fixtures of the ROCOCLIP integration tests: the same generated data as the unit tests (roco_synthetic.py)."""

import importlib.util
import sys
from pathlib import Path

_NAME = "fusionmedclip_rococlip_test_data"
if _NAME not in sys.modules:
    _source = Path(__file__).parents[2] / "unit" / "rococlip" / "roco_synthetic.py"
    _spec = importlib.util.spec_from_file_location(_NAME, _source)
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])

from fusionmedclip_rococlip_test_data import initial_checkpoint, roco_root, roco_synthetic  # noqa: F401

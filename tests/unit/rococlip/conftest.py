"""Fixtures of the ROCOCLIP unit tests (shared with the integration tests, see roco_synthetic.py)."""

import importlib.util
import sys
from pathlib import Path

_NAME = "fusionmedclip_rococlip_test_data"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("roco_synthetic.py"))
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])

from fusionmedclip_rococlip_test_data import initial_checkpoint, roco_root, roco_synthetic  # noqa: F401

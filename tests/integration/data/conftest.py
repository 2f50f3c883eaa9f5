"""Make the generated-file helpers of tests/unit/data importable here too."""

import sys
from pathlib import Path

_HELPERS = str(Path(__file__).resolve().parents[2] / "unit" / "data")
if _HELPERS not in sys.path:
    sys.path.insert(0, _HELPERS)

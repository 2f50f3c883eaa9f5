"""The examples in the synthesis docstrings run and show what they claim."""

import doctest
import importlib
import pkgutil

import pytest

from fusionmedclip_anomalib import synthesis

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(synthesis.__path__, prefix="fusionmedclip_anomalib.synthesis.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0

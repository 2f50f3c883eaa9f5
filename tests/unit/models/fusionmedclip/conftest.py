import warnings

import pytest

from fusionmedclip_anomalib.clip import load_clip

TINY = {"backbone": "fmc-tiny", "pretrained": None, "feature_layers": (2, 4, 6)}


@pytest.fixture
def tiny_clip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip("fmc-tiny", None)


@pytest.fixture
def tiny_model_kwargs():
    return dict(TINY)

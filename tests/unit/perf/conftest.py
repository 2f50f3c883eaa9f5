"""A tiny random-weight CLIP for the inference-path tests."""

import warnings

import pytest

from fusionmedclip_anomalib.clip import load_clip


@pytest.fixture
def tiny_clip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip("fmc-tiny", None)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared, oversubscribed CPU, two threads spin at every op barrier (measured 50x
    slower on this project's 2-core machines); the tests here check behaviour, not speed."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

"""Default training precision: bf16-mixed where CUDA supports bfloat16, full precision elsewhere."""

import torch

from fusionmedclip_anomalib.models.rococlip.precision import default_precision


def test_bf16_mixed_on_cuda_with_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert default_precision() == "bf16-mixed"


def test_full_precision_without_bf16_or_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert default_precision() == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_precision() == "32-true"

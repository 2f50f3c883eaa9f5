"""Linear warmup then cosine decay to the minimum learning rate, stepped per optimiser step."""

import math

import pytest
import torch

from fusionmedclip_anomalib.models.rococlip.schedule import warmup_cosine_factor, warmup_cosine_scheduler

PEAK, MIN, WARMUP, TOTAL = 3e-6, 1e-7, 10, 110


def expected_lr(step: int, scale: float = 1.0) -> float:
    if step < WARMUP:
        return PEAK * scale * (step + 1) / WARMUP
    progress = min(1.0, (step - WARMUP) / (TOTAL - WARMUP))
    return scale * (MIN + (PEAK - MIN) * 0.5 * (1 + math.cos(math.pi * progress)))


@pytest.mark.parametrize("step", [0, 4, 9, 10, 35, 60, 85, 109, 110, 150])
def test_scheduler_follows_the_formula(step: int):
    layer_scale = 0.8**3
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW(
        [{"params": [params[0]], "lr": PEAK}, {"params": [params[1]], "lr": PEAK * layer_scale}], lr=PEAK
    )
    scheduler = warmup_cosine_scheduler(optimizer, WARMUP, TOTAL, peak_lr=PEAK, min_lr=MIN)
    for _ in range(step):
        optimizer.step()
        scheduler.step()
    top, lower = (group["lr"] for group in optimizer.param_groups)
    assert math.isclose(top, expected_lr(step), rel_tol=1e-9)
    assert math.isclose(lower, expected_lr(step, layer_scale), rel_tol=1e-9)


def test_landmarks():
    min_ratio = MIN / PEAK
    assert warmup_cosine_factor(WARMUP - 1, WARMUP, TOTAL, min_ratio) == 1.0
    assert warmup_cosine_factor(WARMUP, WARMUP, TOTAL, min_ratio) == 1.0
    assert math.isclose(warmup_cosine_factor((WARMUP + TOTAL) // 2, WARMUP, TOTAL, min_ratio), (1 + min_ratio) / 2)
    assert math.isclose(warmup_cosine_factor(TOTAL, WARMUP, TOTAL, min_ratio), min_ratio)


def test_no_warmup_starts_at_the_peak():
    assert warmup_cosine_factor(0, 0, 100, 0.1) == 1.0

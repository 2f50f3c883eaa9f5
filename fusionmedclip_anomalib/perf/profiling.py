"""What one call does: floating-point operations (``FlopCounterMode``) and what ``torch.profiler`` sees (attention
kernels, host<->device copies, the most expensive ops)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

# PyTorch's fused paths for nn.MultiheadAttention / TransformerEncoderLayer in eval mode, and the SDPA kernels the
# non-fused path calls with need_weights=False (what open_clip asks for).
FUSED_ATTENTION_OPS = ("aten::_native_multi_head_attention", "aten::_transformer_encoder_layer_fwd")
SDPA_OPS = (
    "aten::scaled_dot_product_attention",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_flash_attention",
    "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_cudnn_attention",
)
MEMCPY_MARKERS = ("Memcpy HtoD", "Memcpy DtoH")


def count_flops(work: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``work`` (matrix products, convolutions and attention, forward and
    backward), as PyTorch's ``FlopCounterMode`` counts them. The ratio of two such counts is the time ratio a
    perfectly efficient implementation would reach."""
    with FlopCounterMode(display=False) as counter:
        work()
    return int(counter.get_total_flops())


def _activities(device: str) -> list[ProfilerActivity]:
    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda") and torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    return activities


def profile_call(work: Callable[[], object], device: str = "cpu") -> profile:
    """Profile one call of ``work`` (after it has been warmed up by the caller)."""
    with profile(activities=_activities(device)) as profiler:
        work()
        if device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.synchronize()
    return profiler


def op_names(profiler: profile) -> set[str]:
    """Every op and kernel name recorded."""
    return {event.name for event in profiler.events()}


def attention_kernels(profiler: profile) -> dict[str, int]:
    """How often each fused-attention or SDPA op ran."""
    counts: dict[str, int] = {}
    for event in profiler.events():
        if event.name not in FUSED_ATTENTION_OPS and event.name not in SDPA_OPS:
            continue
        parent = event.cpu_parent
        if parent is not None and parent.name == event.name:
            continue  # the same op re-dispatched (e.g. through autocast): one call
        counts[event.name] = counts.get(event.name, 0) + 1
    return counts


def host_device_copies(profiler: profile) -> int | None:
    """Number of host<->device memory copies on the accelerator (``None`` when no accelerator activity was
    recorded)."""
    events = profiler.events()
    device_names = [event.name for event in events if event.device_type == torch.autograd.DeviceType.CUDA]
    kernel_names = [kernel.name for event in events for kernel in getattr(event, "kernels", [])]
    names = device_names or kernel_names
    if not names:
        return None
    return sum(1 for name in names if any(marker in name for marker in MEMCPY_MARKERS))


def top_ops(profiler: profile, limit: int = 12) -> list[dict[str, object]]:
    """The ops with the most self time (device time where an accelerator ran, CPU time otherwise)."""
    averages = profiler.key_averages()
    on_device = any(getattr(item, "self_device_time_total", 0) > 0 for item in averages)
    key = "self_device_time_total" if on_device else "self_cpu_time_total"
    total = sum(getattr(item, key) for item in averages) or 1.0
    ranked = sorted(averages, key=lambda item: getattr(item, key), reverse=True)[:limit]
    return [
        {
            "op": item.key,
            "self_ms": getattr(item, key) / 1000.0,
            "share": getattr(item, key) / total,
            "calls": item.count,
        }
        for item in ranked
    ]

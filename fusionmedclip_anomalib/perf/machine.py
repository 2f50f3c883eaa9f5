"""A description of the machine a measurement ran on (CPU model, cores, threads, accelerator, versions)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def bf16_native(device: str) -> bool:
    """Whether ``device`` computes bfloat16 natively (CUDA with bf16 support, or a CPU with AVX512-BF16/AMX)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def describe_machine(device: str) -> dict[str, object]:
    """CPU model, cores, torch threads, accelerator name, bf16 support and library versions."""
    import torch

    description: dict[str, object] = {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "accelerator": None,
        "bf16_native": bf16_native(device),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        description["accelerator"] = torch.cuda.get_device_name(torch.device(device))
        description["cuda"] = torch.version.cuda
    return description


def machine_line(machine: dict[str, object]) -> str:
    """One line naming the machine, e.g. ``AMD EPYC, 2 cores (1 torch thread), torch 2.14.1, CPU``."""
    threads = machine.get("torch_threads")
    accelerator = machine.get("accelerator") or "CPU only"
    return (
        f"{machine.get('cpu')}, {machine.get('cores')} cores ({threads} torch thread{'s' if threads != 1 else ''}), "
        f"{accelerator}, torch {machine.get('torch')}, Python {machine.get('python')}"
    )

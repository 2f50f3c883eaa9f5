"""Peak memory of one piece of work: CPU resident set size and CUDA allocations.

The CPU peak comes from ``/proc/self/status`` (``VmHWM``), which Linux lets a process reset by writing ``5`` to
``/proc/self/clear_refs``; so several peaks can be taken in one process, each from the resident size at its start.
Before the start, free heap pages are handed back to the system (glibc ``malloc_trim``), so that the increase is
the memory the work needs rather than what earlier work left in the allocator. Where the reset is not available,
``resource.getrusage`` gives the process-lifetime peak instead (and ``rss_peak_is_lifetime`` says so).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
import sys
from collections.abc import Callable
from pathlib import Path

MIB = 1024 * 1024
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_mib() -> float | None:
    """Resident set size now, MiB (``None`` where ``/proc`` is not available)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def release_free_heap() -> None:
    """Collect garbage and return free heap pages to the system where the C library can (glibc)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process; ``False`` where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """Peak resident set size since the last reset (or process start), MiB."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def measure_peak_memory(work: Callable[[], object], device: str) -> dict[str, float | bool | None]:
    """Run ``work`` once and report the memory it needed.

    Args:
        work: the piece of work (one inference batch, one training step).
        device: ``cpu`` or ``cuda``; CUDA peaks are reported only for ``cuda``.

    Returns:
        ``rss_before_mib``, ``rss_peak_mib`` (peak during ``work``), ``rss_increase_mib`` (peak minus the size at
        the start: the working memory of ``work`` on the host), ``rss_peak_is_lifetime``, and for CUDA
        ``cuda_max_allocated_mib`` (peak of live tensors, weights included) and ``cuda_increase_mib``.
    """
    import torch

    cuda = device.startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_before = torch.cuda.memory_allocated()
    release_free_heap()
    before = current_rss_mib()
    resettable = reset_peak_rss()
    work()
    if cuda:
        torch.cuda.synchronize()
    peak = peak_rss_mib()
    report: dict[str, float | bool | None] = {
        "rss_before_mib": before,
        "rss_peak_mib": peak,
        "rss_increase_mib": None if before is None or not resettable else max(0.0, peak - before),
        "rss_peak_is_lifetime": not resettable,
        "cuda_max_allocated_mib": None,
        "cuda_increase_mib": None,
    }
    if cuda:
        report["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / MIB
        report["cuda_increase_mib"] = (torch.cuda.max_memory_allocated() - cuda_before) / MIB
    return report

"""Peak memory of one piece of work: CPU resident set size and CUDA allocations.

The CPU peak comes from ``/proc/self/status`` (``VmHWM``), which Linux lets a process reset by writing ``5`` to
``/proc/self/clear_refs``; so several peaks can be taken in one process, each from the resident size at its start.
Before the start, free heap pages are handed back to the system (glibc ``malloc_trim``), so that the increase is
the memory the work needs rather than what earlier work left in the allocator. Where the reset is not available,
``resource.getrusage`` gives the process-lifetime peak instead (and ``rss_peak_is_lifetime`` says so). The
counters are the benchmark harness's (:mod:`fusionmedclip_anomalib.benchmark.memory`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

from fusionmedclip_anomalib.benchmark.memory import current_rss_mib, peak_rss_mib, reset_peak_rss

MIB = 1024 * 1024


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

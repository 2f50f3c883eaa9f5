"""Peak memory of one run: process RSS on the CPU, allocated memory on CUDA.

The serial runner executes many runs in one process, so the process-lifetime peak (``ru_maxrss``) would only ever
grow. On Linux the RSS high-water mark is reset per run by writing ``5`` to ``/proc/self/clear_refs``; where that is
not possible the record says the figure is the process-lifetime peak.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class PeakMemory:
    """Peak memory of a block of code, filled in by :func:`measure_peak_memory` when the block ends.

    Attributes:
        peak_rss_mb: peak resident set size in MiB.
        rss_scope: ``run`` (reset when the block started) or ``process`` (lifetime peak; no reset possible here).
        cuda_max_allocated_mb: peak CUDA memory allocated by torch in MiB, ``None`` without CUDA.
    """

    peak_rss_mb: float = 0.0
    rss_scope: str = "process"
    cuda_max_allocated_mb: float | None = None

    def as_dict(self) -> dict[str, float | str | None]:
        """Plain-data form for the run record."""
        cuda = self.cuda_max_allocated_mb
        return {
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "rss_scope": self.rss_scope,
            "cuda_max_allocated_mb": None if cuda is None else round(cuda, 1),
        }


@contextmanager
def measure_peak_memory() -> Iterator[PeakMemory]:
    """Measure the peak memory of the ``with`` block.

    Yields:
        A :class:`PeakMemory`, complete once the block has ended (also when it raised).

    Example:
        >>> with measure_peak_memory() as memory:
        ...     buffer = bytearray(50 * 2**20)
        >>> memory.peak_rss_mb > 0
        True
    """
    memory = PeakMemory(rss_scope="run" if reset_peak_rss() else "process")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        yield memory
    finally:
        memory.peak_rss_mb = peak_rss_mib()
        if torch.cuda.is_available():
            memory.cuda_max_allocated_mb = torch.cuda.max_memory_allocated() / 2**20


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


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process; ``False`` where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """Peak resident set size since the last :func:`reset_peak_rss` (or the process start), MiB."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux

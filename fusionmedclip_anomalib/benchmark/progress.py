"""Progress over a grid: runs done/total, the current run, an ETA.

On a terminal the status line is redrawn in place and each finished run leaves one line above it. In a log (not a
TTY, or ``CI`` set) only one plain line per finished run is printed.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from fusionmedclip_anomalib.benchmark.config import RunSpec


def _describe(spec: RunSpec) -> str:
    weights = " (random weights)" if spec.weights == "random" else ""
    return f"{spec.model.name}{weights} | {spec.dataset.name} | k={spec.k_shot} | seed={spec.seed}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class GridProgress:
    """Report progress of a grid.

    Args:
        stream: where to write (standard error by default, so standard output keeps only the leaderboard).
        interactive: redraw a status line; by default when ``stream`` is a TTY and ``CI`` is not set.
        clock: time source (tests pass a fake one).

    Example:
        >>> progress = GridProgress()
        >>> progress.start(total=4, already_done=1)  # doctest: +SKIP
        >>> progress.run_started(spec); progress.run_finished(spec, record)  # doctest: +SKIP
    """

    def __init__(
        self, stream: TextIO | None = None, interactive: bool | None = None, clock: Any = time.monotonic
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if interactive is None:
            in_ci = os.environ.get("CI", "").lower() not in {"", "0", "false"}
            interactive = bool(getattr(self.stream, "isatty", lambda: False)()) and not in_ci
        self.interactive = interactive
        self.clock = clock
        self.total = 0
        self.done = 0
        self.failed = 0
        self._finished_here = 0
        self._started_at = 0.0
        self._running: dict[str, tuple[RunSpec, float]] = {}

    def start(self, total: int, already_done: int = 0) -> None:
        """Begin a grid.

        Args:
            total: runs in the grid.
            already_done: runs skipped because a finished record exists.
        """
        self.total, self.done = total, already_done
        self._started_at = self.clock()
        skipped = f", {already_done} already done" if already_done else ""
        self._line(f"benchmark: {total} runs{skipped}, {total - already_done} to run")

    def run_started(self, spec: RunSpec) -> None:
        """A run began."""
        self._running[spec.run_id] = (spec, self.clock())
        self._status()

    def run_finished(self, spec: RunSpec, record: dict[str, Any]) -> None:
        """A run ended (ok or failed); prints its one-line summary."""
        _, began = self._running.pop(spec.run_id, (spec, self.clock()))
        self.done += 1
        self._finished_here += 1
        status = record.get("status", "?")
        if status != "ok":
            self.failed += 1
            error = record.get("error", {})
            detail = f"{error.get('type', 'Error')}: {str(error.get('message', ''))[:160]}"
        else:
            metrics = record.get("metrics") or {}
            detail = "  ".join(f"{name} {value:.3f}" for name, value in metrics.items() if value is not None)
            detail = detail or "no metric defined"
        width = len(str(self.total))
        took = _duration(self.clock() - began)
        eta = self.eta_seconds()
        remaining = f"  | ETA {_duration(eta)}" if eta is not None and self.done < self.total else ""
        self._line(f"[{self.done:>{width}}/{self.total}] {status:<6} {_describe(spec)} ({took})  {detail}{remaining}")
        self._status()

    def close(self) -> None:
        """End the grid with a summary line."""
        failed = f", {self.failed} failed" if self.failed else ""
        self._line(
            f"benchmark: {self.done}/{self.total} runs done{failed} in {_duration(self.clock() - self._started_at)}"
        )

    def eta_seconds(self) -> float | None:
        """Remaining time from this session's pace (wall time per finished run), ``None`` before the first run ends."""
        if not self._finished_here:
            return None
        pace = (self.clock() - self._started_at) / self._finished_here
        return pace * (self.total - self.done)

    def _status(self) -> None:
        if not self.interactive:
            return
        eta = self.eta_seconds()
        eta_text = f"ETA {_duration(eta)}" if eta is not None else "ETA --"
        current = ", ".join(_describe(spec) for spec, _ in self._running.values()) or "-"
        line = f"[{self.done}/{self.total}] {eta_text} | running: {current}"
        columns = 120
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            pass
        self.stream.write("\r\033[K" + line[: max(columns - 1, 20)])
        self.stream.flush()

    def _line(self, text: str) -> None:
        prefix = "\r\033[K" if self.interactive else ""
        self.stream.write(f"{prefix}{text}\n")
        self.stream.flush()

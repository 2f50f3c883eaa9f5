"""The result store: one JSON record per run, written atomically, so a killed grid loses at most the running run.

Layout of a results folder::

    <output>/
      config.yaml                 # the config the grid was last run with
      runs/<run_id>.json          # one record per run: status ok|failed, metrics, timings, memory, versions, error
      support/<dataset>__k<k>__s<seed>.json   # the support-set manifest (shared by all models of that cell)
      samples/<run_id>.npz        # a few test images with raw maps, for the heatmap gallery
      leaderboard.{csv,md,tex}, plots/*.png, gallery/*.png   # written by the leaderboard

Every file is written to a temporary name in the same folder and moved into place with ``os.replace``; the record is
written last, so a record on disk means the run's other files are complete. A run is *finished* when its record says
``ok`` and carries the spec hash of the current config; anything else (missing, failed, stale, unreadable) is run
again.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fusionmedclip_anomalib.benchmark.config import RunSpec


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part.

    Args:
        path: destination.
        data: content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON.

    Args:
        path: destination.
        data: JSON-serialisable value.
    """
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode())


class ResultStore:
    """A results folder.

    Args:
        root: the folder (created on first write).

    Example:
        >>> store = ResultStore("results/bench/demo")  # doctest: +SKIP
        >>> [spec.run_id for spec in config.runs() if not store.is_finished(spec)]  # doctest: +SKIP
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.support_dir = self.root / "support"
        self.samples_dir = self.root / "samples"

    def record_path(self, run_id: str) -> Path:
        """Where a run's record lives."""
        return self.runs_dir / f"{run_id}.json"

    def samples_path(self, run_id: str) -> Path:
        """Where a run's gallery samples live."""
        return self.samples_dir / f"{run_id}.npz"

    def support_path(self, support_id: str) -> Path:
        """Where a support-set manifest lives."""
        return self.support_dir / f"{support_id}.json"

    def load(self, run_id: str) -> dict[str, Any] | None:
        """A run's record, or ``None`` when there is none or it cannot be read."""
        try:
            return json.loads(self.record_path(run_id).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def records(self) -> list[dict[str, Any]]:
        """Every readable record, sorted by run id (temporary files of interrupted writes are ignored)."""
        found = []
        for path in sorted(self.runs_dir.glob("*.json")) if self.runs_dir.is_dir() else []:
            if path.name.startswith("."):
                continue
            record = self.load(path.stem)
            if record is not None:
                found.append(record)
        return found

    def is_finished(self, spec: RunSpec) -> bool:
        """Whether ``spec`` has an ``ok`` record made with exactly this spec."""
        record = self.load(spec.run_id)
        return record is not None and record.get("status") == "ok" and record.get("spec_hash") == spec.spec_hash

    def save(self, result: Any) -> Path:
        """Persist a :class:`~fusionmedclip_anomalib.benchmark.run.RunResult`; the record goes last.

        Args:
            result: the run's result.

        Returns:
            The record path.
        """
        record = dict(result.record)
        spec = RunSpec.from_dict(record["spec"])
        if result.support_manifest is not None:
            path = self.support_path(spec.support_id)
            atomic_write_json(path, result.support_manifest)
            record.setdefault("support", {})["manifest"] = str(path.relative_to(self.root))
        if result.gallery:
            buffer = io.BytesIO()
            import numpy as np

            np.savez_compressed(buffer, **result.gallery)
            path = self.samples_path(spec.run_id)
            atomic_write_bytes(path, buffer.getvalue())
            record["samples"] = str(path.relative_to(self.root))
        path = self.record_path(spec.run_id)
        atomic_write_json(path, record)
        return path

    def save_config(self, text: str) -> None:
        """Keep a copy of the config the grid runs with."""
        atomic_write_bytes(self.root / "config.yaml", text.encode())

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete temporary files left by a process killed mid-write (call before a grid starts, not during one).

        Returns:
            The deleted paths.
        """
        removed = []
        for folder in (self.root, self.runs_dir, self.support_dir, self.samples_dir):
            for path in folder.glob(".*.tmp") if folder.is_dir() else []:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

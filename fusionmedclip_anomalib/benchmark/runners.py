"""Runners: where the runs of a grid execute. Results land in the same store either way.

- :class:`LocalRunner` (default): one run after the other in this process.
- :class:`RayRunner`: each run is a Ray task (one GPU per run when the cluster has GPUs); the driver writes the
  records as tasks finish, so workers need no shared filesystem. A worker that dies (OOM, SIGKILL) gives a failed
  record, not a stopped grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from fusionmedclip_anomalib.benchmark.config import RunSpec
from fusionmedclip_anomalib.benchmark.progress import GridProgress
from fusionmedclip_anomalib.benchmark.store import ResultStore


class Runner(Protocol):
    """Executes runs and yields ``(spec, RunResult)`` as each one ends, in any order."""

    def execute(self, specs: list[RunSpec], progress: GridProgress) -> Iterator[tuple[RunSpec, Any]]:
        """Run ``specs``; call ``progress.run_started`` when a run starts or is queued."""
        ...


class LocalRunner:
    """Runs one after the other in this process (the default).

    Example:
        >>> run_grid(config.runs(), ResultStore("results/bench/demo"), LocalRunner())  # doctest: +SKIP
    """

    def execute(self, specs: list[RunSpec], progress: GridProgress) -> Iterator[tuple[RunSpec, Any]]:
        """Run each spec in turn.

        Args:
            specs: runs to execute.
            progress: progress display.

        Yields:
            ``(spec, RunResult)`` per run.
        """
        from fusionmedclip_anomalib.benchmark.run import execute_run

        for spec in specs:
            progress.run_started(spec)
            yield spec, execute_run(spec)


def _execute_remote(spec_data: dict[str, Any]) -> Any:
    from fusionmedclip_anomalib.benchmark.run import execute_run

    return execute_run(RunSpec.from_dict(spec_data))


class RayRunner:
    """Sends each run to a Ray cluster as a task.

    Args:
        address: Ray cluster address; ``None`` joins the cluster ``ray`` already knows (``RAY_ADDRESS``, or an
            ``ray.init`` done by the caller) or starts a local one.
        cpus_per_run: CPUs reserved per run.
        gpus_per_run: GPUs per run; ``None``: 1 when the cluster has GPUs, else 0.

    Example:
        >>> run_grid(config.runs(), store, RayRunner(address="auto"))  # doctest: +SKIP
    """

    def __init__(self, address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float | None = None) -> None:
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run

    def execute(self, specs: list[RunSpec], progress: GridProgress) -> Iterator[tuple[RunSpec, Any]]:
        """Submit every spec, then yield results as tasks finish.

        Args:
            specs: runs to execute.
            progress: progress display.

        Yields:
            ``(spec, RunResult)`` per run; a task that raised or whose worker died gives a failed result.
        """
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, log_to_driver=False)
        try:
            gpus = self.gpus_per_run
            if gpus is None:
                gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
            task = ray.remote(num_cpus=self.cpus_per_run, num_gpus=gpus, max_retries=0)(_execute_remote)
            pending = {}
            for spec in specs:
                pending[task.remote(spec.to_dict())] = spec
                progress.run_started(spec)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except Exception as error:  # noqa: BLE001 - a dead worker is a failed run, the grid goes on
                    result = _failed_result(spec, error)
                yield spec, result
        finally:
            if started_here:
                ray.shutdown()


def _failed_result(spec: RunSpec, error: BaseException) -> Any:
    from fusionmedclip_anomalib.benchmark.run import RunResult, new_record

    record = new_record(spec)
    record["status"] = "failed"
    record["error"] = {"type": type(error).__name__, "message": str(error), "traceback": None}
    return RunResult(record)


def run_grid(
    specs: list[RunSpec],
    store: ResultStore,
    runner: Runner | None = None,
    progress: GridProgress | None = None,
) -> list[dict[str, Any]]:
    """Run every spec without a finished record and store each result as soon as it ends.

    Args:
        specs: the grid.
        store: the results folder.
        runner: where runs execute (:class:`LocalRunner` by default).
        progress: progress display (a default :class:`GridProgress` when ``None``).

    Returns:
        The grid's records, in grid order (``None`` for a run that has none, which only happens if the runner
        stopped early).
    """
    runner = runner or LocalRunner()
    progress = progress or GridProgress()
    store.remove_stale_temporaries()
    pending = [spec for spec in specs if not store.is_finished(spec)]
    progress.start(total=len(specs), already_done=len(specs) - len(pending))
    for spec, result in runner.execute(pending, progress):
        store.save(result)
        progress.run_finished(spec, result.record)
    progress.close()
    return [store.load(spec.run_id) for spec in specs]

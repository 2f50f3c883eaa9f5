"""Benchmark harness: any anomalib model x datamodule x k x seed under one protocol, crash-safe, with leaderboards.

Modules, one job each: :mod:`.config` (YAML grid -> runs), :mod:`.run` (one run), :mod:`.factory` (build model and
datamodule), :mod:`.weights` (pretrained/random option), :mod:`.support` (k-shot support set and split checks),
:mod:`.outputs` (raw test outputs), :mod:`.metrics` (raw-score metrics), :mod:`.memory`, :mod:`.environment`,
:mod:`.store` (atomic per-run records), :mod:`.runners` (local, Ray), :mod:`.progress`, :mod:`.leaderboard`,
:mod:`.check` (regression gate), :mod:`.cli` and :mod:`.leaderboard_cli` (commands).

Nothing heavy is imported here, so the ``fusionmedclip bench`` command starts fast.

Example:
    >>> from fusionmedclip_anomalib.benchmark.config import load_config
    >>> from fusionmedclip_anomalib.benchmark.runners import run_grid
    >>> from fusionmedclip_anomalib.benchmark.store import ResultStore
    >>> config = load_config("demo")  # doctest: +SKIP
    >>> records = run_grid(config.runs(), ResultStore("results/bench/demo"))  # doctest: +SKIP
"""

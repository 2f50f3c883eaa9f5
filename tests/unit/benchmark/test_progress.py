"""Progress display: line-based in logs and CI, ETA from the pace of this session."""

from __future__ import annotations

import io

import pytest

from fusionmedclip_anomalib.benchmark.config import parse_config
from fusionmedclip_anomalib.benchmark.progress import GridProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


SPECS = parse_config(
    {
        "k_shots": [4],
        "seeds": [0, 1],
        "weights": "random",
        "models": [{"name": "A", "class_path": "p.A"}, {"name": "B", "class_path": "p.B"}],
        "datasets": [{"name": "D", "class_path": "p.D"}],
    }
).runs()


def test_log_output_is_one_line_per_finished_run_with_eta() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = GridProgress(stream, clock=clock)
    assert not progress.interactive
    progress.start(total=4, already_done=1)
    progress.run_started(SPECS[1])
    clock.now = 10.0
    progress.run_finished(SPECS[1], {"status": "ok", "metrics": {"image_AUROC": 0.75, "pixel_AUROC": None}})
    assert progress.eta_seconds() == pytest.approx(20.0)
    progress.run_started(SPECS[2])
    clock.now = 20.0
    progress.run_finished(SPECS[2], {"status": "failed", "error": {"type": "ValueError", "message": "boom"}})
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "benchmark: 4 runs, 1 already done, 3 to run"
    assert lines[1] == "[2/4] ok     B (random weights) | D | k=4 | seed=0 (10s)  image_AUROC 0.750  | ETA 20s"
    assert lines[2].startswith("[3/4] failed A (random weights) | D | k=4 | seed=1 (10s)  ValueError: boom")
    assert lines[3] == "benchmark: 3/4 runs done, 1 failed in 20s"
    assert "\r" not in stream.getvalue()


def test_terminal_gets_a_redrawn_status_line_but_not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    stream = FakeTTY()
    progress = GridProgress(stream, clock=FakeClock())
    assert progress.interactive
    progress.start(total=2)
    progress.run_started(SPECS[0])
    assert "\r\033[K[0/2] ETA -- | running: A (random weights) | D | k=4 | seed=0" in stream.getvalue()
    monkeypatch.setenv("CI", "true")
    assert not GridProgress(FakeTTY()).interactive

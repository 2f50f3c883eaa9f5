"""Wall time of ``fusionmedclip --help`` in a fresh interpreter: what every command pays before any work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fusionmedclip_anomalib.perf.timing import median

STARTUP_GOAL_S = 1.5


def help_command() -> list[str]:
    """The installed ``fusionmedclip`` console script next to this interpreter (the one users run), else the same
    entry point through ``python -m``."""
    script = Path(sys.executable).with_name("fusionmedclip")
    if script.is_file():
        return [str(script), "--help"]
    found = shutil.which("fusionmedclip")
    if found:
        return [found, "--help"]
    return [sys.executable, "-m", "fusionmedclip_anomalib.cli", "--help"]


def measure_startup(repeats: int = 5, warmup: int = 1) -> dict[str, object]:
    """Median wall time of ``fusionmedclip --help`` over ``repeats`` runs after ``warmup`` runs (file cache).

    Returns:
        ``command``, ``median_s``, ``samples_s``, ``goal_s`` and ``meets_goal``.
    """
    command = help_command()
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    samples = []
    for index in range(warmup + repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if index >= warmup:
            samples.append(time.perf_counter() - start)
    seconds = median(samples)
    return {
        "command": " ".join(Path(command[0]).name if i == 0 else part for i, part in enumerate(command)),
        "median_s": seconds,
        "samples_s": samples,
        "goal_s": STARTUP_GOAL_S,
        "meets_goal": seconds < STARTUP_GOAL_S,
    }

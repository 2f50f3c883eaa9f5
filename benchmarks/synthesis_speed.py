"""Synthesised pairs per second for every synthesis task and preset, on one CPU core.

Run: ``python benchmarks/synthesis_speed.py [--size 224] [--seconds 2] [--support 16]``

The goal (issue 3) is at least 200 pairs/s per task at 224 px, so synthesis never limits a GPU training step.
Each call includes everything a training step pays for: grey conversion and foreground estimation.
"""

from __future__ import annotations

import os

# One core: pin the process and keep every library single-threaded (set before numpy / OpenCV load).
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse
import time

import cv2
import numpy as np

from fusionmedclip_anomalib.synthesis import KNOWN_TASKS, PRESETS, SUPPORT_TASKS, TASK_CLASSES, SynthesisPool
from fusionmedclip_anomalib.synthesis.support import SupportSet


def phantom(size: int, rng: np.random.Generator) -> np.ndarray:
    """A head-like test image: a textured bright ellipse with darker inner structures on black."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    cy, cx = 0.5 + rng.uniform(-0.05, 0.05, 2)
    body = ((yy - cy) / rng.uniform(0.35, 0.45)) ** 2 + ((xx - cx) / rng.uniform(0.3, 0.4)) ** 2 < 1.0
    texture = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), size / 100)
    inner = ((yy - cy) / 0.12) ** 2 + ((xx - cx) / 0.06) ** 2 < 1.0
    image = np.where(body, 150 + 60 * texture / np.abs(texture).max() - 70 * inner, 0)
    return np.clip(image, 0, 255).astype(np.uint8)


def measure(call, images: list[np.ndarray], seconds: float) -> float:
    """Pairs per second of ``call(image, rng)`` cycling over ``images`` for about ``seconds``."""
    rng = np.random.default_rng(0)
    for image in images[:4]:  # warm-up: caches, lazy OpenCV initialisation
        call(image, rng)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for image in images:
            call(image, rng)
        count += len(images)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per task")
    parser.add_argument("--support", type=int, default=16, help="number of support images (k)")
    args = parser.parse_args()
    cv2.setNumThreads(1)

    rng = np.random.default_rng(0)
    images = [phantom(args.size, rng) for _ in range(args.support)]
    support = SupportSet(images)
    print(f"synthesis speed at {args.size} px, one core, k={args.support} support images, {args.seconds:g} s per row")
    print(f"{'task':<24} {'pairs/s':>9} {'ms/pair':>9}")
    for name in KNOWN_TASKS:
        task = TASK_CLASSES[name](support=support) if name in SUPPORT_TASKS else TASK_CLASSES[name]()
        rate = measure(task, images, args.seconds)
        print(f"{name:<24} {rate:>9.0f} {1000 / rate:>9.2f}")
    for preset in PRESETS:
        rate = measure(SynthesisPool(preset, support=images), images, args.seconds)
        print(f"{'pool ' + preset:<24} {rate:>9.0f} {1000 / rate:>9.2f}")


if __name__ == "__main__":
    main()

"""The regression gate: compare a leaderboard with a committed reference leaderboard.

A cell is one (model, weights, dataset, k_shot, metric) mean. It regresses when its value dropped by more than the
tolerance (absolute, in the CSV's units: fractions, so ``0.02`` is 2 points) or when it is missing although the
reference has it. Higher is better for every metric; improvements never fail the gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fusionmedclip_anomalib.benchmark.config import ALL_METRICS


@dataclass(frozen=True)
class Regression:
    """One cell that is worse than the reference.

    Args:
        model: model name.
        weights: weights label.
        dataset: dataset name.
        k_shot: support-set size.
        metric: metric name.
        reference: the reference mean.
        current: the new mean, ``None`` when missing.
        tolerance: the allowed drop.
    """

    model: str
    weights: str
    dataset: str
    k_shot: int
    metric: str
    reference: float
    current: float | None
    tolerance: float

    @property
    def cell(self) -> str:
        """``model [weights] / dataset / k=K / metric``."""
        return f"{self.model} [{self.weights}] / {self.dataset} / k={self.k_shot} / {self.metric}"

    def __str__(self) -> str:
        if self.current is None:
            return f"{self.cell}: missing (reference {self.reference:.4f})"
        drop = self.reference - self.current
        return (
            f"{self.cell}: {self.current:.4f} < reference {self.reference:.4f} "
            f"(drop {drop:.4f} > tolerance {self.tolerance:.4f})"
        )


def compare(current: pd.DataFrame, reference: pd.DataFrame, tolerance: float) -> list[Regression]:
    """Cells of ``reference`` that ``current`` misses or falls below by more than ``tolerance``.

    Args:
        current: new leaderboard (``leaderboard.csv`` columns).
        reference: committed leaderboard.
        tolerance: allowed absolute drop.

    Returns:
        The regressions, in reference order.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    metric_columns = [f"{m}_mean" for m in ALL_METRICS if f"{m}_mean" in reference.columns]
    now = {_key(row): row for _, row in current.iterrows()}
    found = []
    for _, row in reference.iterrows():
        match = now.get(_key(row))
        for column in metric_columns:
            expected = row[column]
            if pd.isna(expected):
                continue
            value = None if match is None or column not in match or pd.isna(match[column]) else float(match[column])
            if value is None or float(expected) - value > tolerance + 1e-12:
                found.append(
                    Regression(
                        str(row["model"]),
                        str(row["weights"]),
                        str(row["dataset"]),
                        int(row["k_shot"]),
                        column.removesuffix("_mean"),
                        float(expected),
                        value,
                        tolerance,
                    )
                )
    return found


def check_files(current_csv: str | Path, reference_csv: str | Path, tolerance: float) -> list[Regression]:
    """:func:`compare` on two ``leaderboard.csv`` files.

    Args:
        current_csv: the new leaderboard.
        reference_csv: the committed reference.
        tolerance: allowed absolute drop.

    Returns:
        The regressions.
    """
    return compare(pd.read_csv(current_csv), pd.read_csv(reference_csv), tolerance)


def _key(row: pd.Series) -> tuple:
    weights = row.get("weights", "pretrained")
    weights = "pretrained" if isinstance(weights, float) and math.isnan(weights) else str(weights)
    return (str(row["model"]), weights, str(row["dataset"]), int(row["k_shot"]))

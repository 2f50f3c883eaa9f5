"""Validation of the (low, high) ranges that synthesis parameters are drawn from."""

from __future__ import annotations

import math
from collections.abc import Sequence


def check_range(
    name: str, value: Sequence[float], low: float = -math.inf, high: float = math.inf
) -> tuple[float, float]:
    """Return ``value`` as a (low, high) tuple of floats after checking ``low <= value[0] <= value[1] <= high``.

    Raises:
        ValueError: naming the parameter, when the pair is malformed or out of bounds.

    Example:
        >>> check_range("gamma", [0.4, 0.6], 0.0, 1.0)
        (0.4, 0.6)
    """
    try:
        pair = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
        raise ValueError(f"{name} must be a (low, high) pair with {low} <= low <= high <= {high}, got {value!r}")
    return pair  # type: ignore[return-value]

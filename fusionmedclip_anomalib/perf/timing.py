"""Interleaved wall-clock measurement: medians of repeated runs after warm-up, ratios from adjacent runs.

Several subjects are timed in rounds; every round runs each subject once, and the order rotates from round to
round, so slow drifts of the machine (other processes, thermal state) hit every subject alike. A ratio between two
subjects is the median over rounds of their per-round ratio, which cancels noise that a ratio of two separately
taken medians would keep.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

Subject = Callable[[], object]
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation, for normal noise
MEDIAN_EFFICIENCY = 1.2533  # standard error of a median / standard error of a mean, for normal noise


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (mean of the middle two for an even count).

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("median of an empty sequence")
    return float(statistics.median(values))


def interleaved_order(names: Sequence[str], rounds: int) -> list[list[str]]:
    """The order in which the subjects run in each round: round ``r`` starts at subject ``r mod n``.

    Example:
        >>> interleaved_order(["a", "b"], 3)
        [['a', 'b'], ['b', 'a'], ['a', 'b']]
    """
    names = list(names)
    return [names[r % len(names) :] + names[: r % len(names)] for r in range(rounds)] if names else []


@dataclass
class Measurements:
    """Seconds per call of each subject, one value per round (in round order)."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    calls_per_sample: dict[str, int] = field(default_factory=dict)

    def median(self, name: str) -> float:
        """Median seconds per call of ``name``."""
        return median(self.seconds[name])

    def ratio(self, numerator: str, denominator: str) -> float:
        """Median over rounds of ``seconds[numerator] / seconds[denominator]`` (paired by round)."""
        pairs = zip(self.seconds[numerator], self.seconds[denominator], strict=True)
        return median([a / b for a, b in pairs])

    def difference(self, minuend: str, subtrahend: str) -> float:
        """Median over rounds of ``seconds[minuend] - seconds[subtrahend]`` (paired by round)."""
        pairs = zip(self.seconds[minuend], self.seconds[subtrahend], strict=True)
        return median([a - b for a, b in pairs])

    def difference_error(self, minuend: str, subtrahend: str) -> float:
        """Standard error of :meth:`difference`, from the median absolute deviation of the per-round differences
        (robust to the odd disturbed round)."""
        pairs = zip(self.seconds[minuend], self.seconds[subtrahend], strict=True)
        differences = [a - b for a, b in pairs]
        centre = median(differences)
        deviation = MAD_TO_SIGMA * median([abs(d - centre) for d in differences])
        return MEDIAN_EFFICIENCY * deviation / math.sqrt(len(differences))

    def to_dict(self) -> dict[str, dict[str, float | int | list[float]]]:
        return {
            name: {
                "median_s": self.median(name),
                "samples_s": list(values),
                "calls_per_sample": self.calls_per_sample.get(name, 1),
            }
            for name, values in self.seconds.items()
        }


def measure_interleaved(
    subjects: Mapping[str, Subject],
    repeats: int,
    warmup: int = 1,
    synchronize: Callable[[], None] | None = None,
    min_sample_s: float = 0.0,
    min_calls: Mapping[str, int] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Measurements:
    """Time every subject ``repeats`` times in rotating rounds after ``warmup`` untimed calls each.

    Args:
        subjects: name -> zero-argument callable doing one unit of work (one batch, one optimiser step).
        repeats: rounds; each gives one sample per subject.
        warmup: untimed calls of every subject first (allocator, kernel selection, lazy initialisation).
        synchronize: called before reading the clock (``torch.cuda.synchronize`` for asynchronous devices).
        min_sample_s: a sample repeats a fast subject until it lasts at least this long (the call count is fixed
            from the last warm-up call and reported), so that timer resolution and per-call jitter do not dominate.
        min_calls: subject name -> the fewest consecutive calls in one of its samples (a subject fed by a
            prefetching loader then shows its steady state, not a batch prepared while the other subjects ran).
        clock: the clock, seconds.

    Returns:
        Seconds per call of every subject, per round.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sync = synchronize or (lambda: None)
    calls: dict[str, int] = {}
    for name, subject in subjects.items():
        elapsed = 0.0
        for _ in range(max(warmup, 1 if min_sample_s > 0 else 0)):
            elapsed = _timed(subject, 1, sync, clock)
        needed = math.ceil(min_sample_s / elapsed) if min_sample_s > 0 and elapsed > 0 else 1
        calls[name] = max((min_calls or {}).get(name, 1), needed)
    result = Measurements({name: [] for name in subjects}, calls)
    for order in interleaved_order(list(subjects), repeats):
        for name in order:
            result.seconds[name].append(_timed(subjects[name], calls[name], sync, clock) / calls[name])
    return result


def _timed(subject: Subject, calls: int, sync: Callable[[], None], clock: Callable[[], float]) -> float:
    sync()
    start = clock()
    for _ in range(calls):
        subject()
    sync()
    return clock() - start

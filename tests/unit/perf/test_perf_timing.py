"""Medians, the interleaving order, and interleaved measurement with a fake clock."""

import pytest

from fusionmedclip_anomalib.perf.timing import Measurements, interleaved_order, measure_interleaved, median


def test_median_of_fixed_lists():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([7.0]) == 7.0
    with pytest.raises(ValueError):
        median([])


def test_interleaved_order_alternates_two_subjects():
    assert interleaved_order(["a", "b"], 4) == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]


def test_interleaved_order_rotates_every_subject_through_every_position():
    rounds = interleaved_order(["a", "b", "c"], 3)
    assert all(sorted(order) == ["a", "b", "c"] for order in rounds)
    for position in range(3):
        assert sorted(order[position] for order in rounds) == ["a", "b", "c"]


class FakeClock:
    """A clock that each subject advances by its own fixed cost, so timings are exact."""

    def __init__(self):
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def subject(self, name: str, cost: float):
        def run():
            self.calls.append(name)
            self.now += cost

        return run


def test_measure_interleaved_alternates_and_times_each_subject():
    clock = FakeClock()
    subjects = {"fast": clock.subject("fast", 1.0), "slow": clock.subject("slow", 3.0)}
    measured = measure_interleaved(subjects, repeats=4, warmup=2, clock=clock)
    assert clock.calls[:4] == ["fast", "fast", "slow", "slow"]  # warm-up, untimed
    assert clock.calls[4:] == ["fast", "slow", "slow", "fast", "fast", "slow", "slow", "fast"]
    assert measured.seconds == {"fast": [1.0] * 4, "slow": [3.0] * 4}
    assert measured.ratio("slow", "fast") == 3.0
    assert measured.difference("slow", "fast") == 2.0


def test_min_sample_repeats_fast_subjects_and_reports_per_call_time():
    clock = FakeClock()
    measured = measure_interleaved(
        {"tiny": clock.subject("tiny", 0.01)}, repeats=2, warmup=1, min_sample_s=0.05, clock=clock
    )
    assert measured.calls_per_sample["tiny"] == 5
    assert measured.seconds["tiny"] == pytest.approx([0.01, 0.01])
    assert len(clock.calls) == 1 + 2 * 5


def test_min_calls_makes_consecutive_calls_per_sample_of_that_subject():
    clock = FakeClock()
    subjects = {"a": clock.subject("a", 1.0), "b": clock.subject("b", 2.0)}
    measured = measure_interleaved(subjects, repeats=2, warmup=1, min_calls={"a": 3}, clock=clock)
    assert measured.calls_per_sample == {"a": 3, "b": 1}
    assert clock.calls[2:] == ["a"] * 3 + ["b"] + ["b"] + ["a"] * 3
    assert measured.seconds == {"a": [1.0, 1.0], "b": [2.0, 2.0]}


def test_ratio_is_the_median_of_paired_ratios():
    measured = Measurements({"a": [2.0, 10.0, 3.0], "b": [1.0, 4.0, 3.0]})
    assert measured.ratio("a", "b") == 2.0  # per-round ratios 2.0, 2.5, 1.0
    assert measured.median("a") == 3.0
    assert measured.to_dict()["a"]["median_s"] == 3.0


def test_repeats_must_be_positive():
    with pytest.raises(ValueError, match="repeats"):
        measure_interleaved({"a": lambda: None}, repeats=0)


def test_difference_error_from_the_median_absolute_deviation():
    measured = Measurements({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [0.0] * 5})
    assert measured.difference("a", "b") == 3.0
    # deviations from 3: 2, 1, 0, 1, 2 -> MAD 1
    assert measured.difference_error("a", "b") == pytest.approx(1.2533 * 1.4826 / 5**0.5)
    assert Measurements({"a": [2.0, 2.0], "b": [1.0, 1.0]}).difference_error("a", "b") == 0.0

import pytest

from fusionmedclip_anomalib.synthesis.ranges import check_range


def test_valid_ranges_become_float_tuples():
    assert check_range("size", [0, 1], 0.0, 1.0) == (0.0, 1.0)
    assert check_range("gamma", (0.5, 0.5)) == (0.5, 0.5)


@pytest.mark.parametrize("value", [(0.6, 0.4), (0.1, 1.5), (-0.1, 0.2), (0.1,), (0.1, 0.2, 0.3), "ab", None])
def test_invalid_ranges_name_the_parameter(value):
    with pytest.raises(ValueError, match="size"):
        check_range("size", value, 0.0, 1.0)

import cv2
import numpy as np
import pytest

from fusionmedclip_anomalib.synthesis import to_grey


def test_grey_input_is_returned_as_is():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_grey(image) is image


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channel_layouts_become_one_grey_channel(channels):
    rgb = np.zeros((5, 6, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    image = {1: rgb[..., :1], 3: rgb, 4: np.dstack([rgb, np.full((5, 6), 7, np.uint8)])}[channels]
    grey = to_grey(image)
    assert grey.shape == (5, 6) and grey.dtype == np.uint8
    expected = 200 if channels == 1 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[0, 0]
    assert (grey == expected).all()


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((4, 4), np.float32), TypeError),
        ([[0, 1], [2, 3]], TypeError),
        (np.zeros((4, 4, 2), np.uint8), ValueError),
        (np.zeros((2, 4, 4, 3), np.uint8), ValueError),
        (np.zeros((0, 4), np.uint8), ValueError),
    ],
)
def test_unsupported_inputs_are_rejected(image, error):
    with pytest.raises(error):
        to_grey(image)

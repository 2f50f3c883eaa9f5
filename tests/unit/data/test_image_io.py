"""Robust decoding of images and masks: by content, any mode, 16-bit scaled, EXIF, DICOM, errors name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medical_fakes import (
    corrupt_file,
    exif_rotated_jpeg,
    grey,
    mask_array,
    palette_png,
    png_bytes_named_jpg,
    rgba_png,
    save,
    sixteen_bit_png,
    truncated_png,
)

from fusionmedclip_anomalib.data.image_io import ImageReadError, probe_image, read_image, read_mask


def test_png_bytes_behind_jpg_name_decode_losslessly(tmp_path: Path) -> None:
    path = png_bytes_named_jpg(tmp_path / "x.jpg", seed=1)
    image = read_image(path)
    assert image.shape == (24, 32, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image[..., 0], grey(1) / 255.0, atol=1e-6)
    assert np.array_equal(image[..., 0], image[..., 2])  # greyscale replicated


def test_rgba_is_composited_over_black(tmp_path: Path) -> None:
    opaque = read_image(rgba_png(tmp_path / "opaque.png", seed=2, alpha=255))
    np.testing.assert_allclose(opaque[..., 1], grey(2) / 255.0, atol=1e-6)
    transparent = read_image(rgba_png(tmp_path / "clear.png", seed=2, alpha=0))
    assert transparent.max() == 0.0


def test_palette_image_gives_its_colours(tmp_path: Path) -> None:
    image = read_image(palette_png(tmp_path / "p.png", seed=3))
    assert image.shape == (24, 32, 3)
    assert np.abs(image[..., 0] - grey(3) / 255.0).mean() < 0.03


@pytest.mark.parametrize("full_scale", [4095, 65535])
def test_16_bit_png_is_scaled_not_saturated(tmp_path: Path, full_scale: int) -> None:
    path = sixteen_bit_png(tmp_path / "deep.png", seed=4, full_scale=full_scale)
    image = read_image(path)
    reference = grey(4) / 255.0
    assert np.abs(image[..., 0] - reference).max() < 2 / 255
    assert (image == 1.0).mean() < 0.05  # anomalib's reader saturates almost every pixel here


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = read_image(exif_rotated_jpeg(tmp_path / "rot.jpg", seed=5))
    assert image.shape == (32, 24, 3)


def test_as_tensor_matches_anomalib_convention(tmp_path: Path) -> None:
    from torchvision.tv_tensors import Image

    tensor = read_image(save(tmp_path / "a.png", grey(6)), as_tensor=True)
    assert isinstance(tensor, Image)
    assert tuple(tensor.shape) == (3, 24, 32) and str(tensor.dtype) == "torch.float32"
    assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="broken.jpg"):
        read_image(corrupt_file(tmp_path / "broken.jpg"))
    with pytest.raises(ImageReadError, match="half.png"):
        read_image(truncated_png(tmp_path / "half.png", seed=7))
    with pytest.raises(FileNotFoundError, match="absent.png"):
        read_image(tmp_path / "absent.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png"):
        probe_image(empty)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        probe_image(tmp_path / "broken.jpg")


def test_masks_merge_resize_and_threshold(tmp_path: Path) -> None:
    first = save(tmp_path / "m.png", mask_array(24, 32, (0, 0, 4, 4)))
    second = save(tmp_path / "m_1.png", mask_array(24, 32, (10, 10, 12, 14)))
    merged = read_mask([first, second])
    assert merged.dtype == np.bool_ and merged.sum() == 16 + 8

    big = save(tmp_path / "big.png", mask_array(48, 64, (0, 0, 8, 8)))
    resized = read_mask(big, size=(24, 32))
    assert resized.shape == (24, 32) and resized.sum() == 16 and resized[:4, :4].all()

    lossy = save(tmp_path / "lossy.jpg", mask_array(24, 32, (4, 4, 16, 20)), fmt="JPEG", quality=50)
    expected = mask_array(24, 32, (4, 4, 16, 20)) > 0
    decoded = read_mask(lossy)
    assert (decoded & expected).sum() / (decoded | expected).sum() > 0.9

    labels = save(tmp_path / "labels.png", (mask_array(24, 32, (1, 1, 3, 3)) > 0).astype(np.uint8))
    assert read_mask(labels).sum() == 4  # a 0/1 label image, not thresholded away


def test_dicom_with_window_and_monochrome1(tmp_path: Path) -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 16).astype(np.uint16)  # 0..4080
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.Rows, dataset.Columns = 16, 16
    dataset.SamplesPerPixel, dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 1, 16, 12, 11
    dataset.PixelRepresentation = 0
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.WindowCenter, dataset.WindowWidth = 2048, 4096
    dataset.PixelData = pixels.tobytes()
    path = tmp_path / "scan"  # no suffix: recognised by the DICM magic
    dataset.save_as(path, enforce_file_format=True)

    image = read_image(path)
    assert image.shape == (16, 16, 3)
    assert image[0, 0, 0] < 0.01 and image[-1, -1, 0] > 0.99
    assert np.all(np.diff(image[..., 0].ravel()) >= 0)

    dataset.PhotometricInterpretation = "MONOCHROME1"
    dataset.save_as(tmp_path / "inverted.dcm", enforce_file_format=True)
    inverted = read_image(tmp_path / "inverted.dcm")
    assert inverted[0, 0, 0] > 0.99 and inverted[-1, -1, 0] < 0.01

"""Decoding of medical image and mask files, whatever their container says.

Real medical datasets are messy: ``.jpg`` names holding PNG bytes, RGBA and palette images, 16-bit greyscale
PNGs, EXIF-rotated photos of films, DICOM files. Everything here decodes by *content* (Pillow sniffs the
format; DICOM is recognised by its ``DICM`` magic or its suffix) and returns arrays in a fixed convention:

- images: ``float32`` RGB ``[H, W, 3]`` in ``[0, 1]`` (greyscale replicated), like anomalib's ``read_image``;
- masks: ``bool`` ``[H, W]``; several mask files for one image are merged with a logical OR.

Scaling: 8-bit data is divided by 255; deeper integer data (16-bit PNG, 32-bit TIFF) by the smallest full scale
``2**b - 1`` (b in 8, 10, 12, 14, 16, 32) that holds the image's maximum, so 12-bit scans in 16-bit containers
keep their contrast and nothing saturates; float data is min-max scaled unless already in [0, 1]; DICOM gets its
modality LUT, then the window stored in the file, and MONOCHROME1 is inverted. Alpha is composited over black.

Only numpy and Pillow are imported at module level (``pydicom`` and ``torch`` when needed), so the preparation
command can use this module without paying for torch.

Example:
    >>> image = read_image("scan.jpg")                     # doctest: +SKIP
    >>> image.shape, image.dtype
    ((512, 512, 3), dtype('float32'))
    >>> mask = read_mask(["a_mask.png", "a_mask_1.png"], size=image.shape[:2])  # doctest: +SKIP
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ImageReadError",
    "binarize_mask",
    "decode_bytes",
    "is_dicom",
    "merge_masks",
    "probe_image",
    "read_grey",
    "read_grey_or_rgb",
    "read_image",
    "read_mask",
]

DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
# Integer images are scaled by the smallest of these full-scale values that holds their maximum, so a 12-bit
# scan stored in a 16-bit PNG is not squeezed into the bottom 6 % of the range, and nothing is ever clipped.
_BIT_DEPTHS = (8, 10, 12, 14, 16, 32)
# A mask whose largest value is at most this is a label image (0/1); otherwise it is a 0..255 picture of a mask,
# possibly lossy (BUSI / MediCLIP JPEG masks), thresholded at > 127.
_LABEL_IMAGE_MAX = 1


class ImageReadError(ValueError):
    """A file exists but cannot be decoded as an image or mask; the message names the file."""


def is_dicom(path: str | Path) -> bool:
    """Whether a file is DICOM, judged by its 128-byte preamble + ``DICM`` magic or by a ``.dcm`` suffix."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _scale_integer(array: np.ndarray) -> np.ndarray:
    peak = int(array.max()) if array.size else 0
    for bits in _BIT_DEPTHS:
        full_scale = (1 << bits) - 1
        if peak <= full_scale:
            return array.astype(np.float32) / np.float32(full_scale)
    return array.astype(np.float32) / np.float32(peak)


def _scale_float(array: np.ndarray) -> np.ndarray:
    array = np.nan_to_num(array.astype(np.float32))
    low, high = float(array.min()), float(array.max())
    if low >= 0.0 and high <= 1.0:
        return array
    if high <= low:
        return np.zeros_like(array)
    return (array - low) / np.float32(high - low)


def _to_unit_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        if array.dtype == np.uint8:
            return array.astype(np.float32) / np.float32(255.0)
        return _scale_integer(np.clip(array, 0, None))
    return _scale_float(array)


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """Pillow image -> float32 ``[H, W]`` or ``[H, W, 3]`` in [0, 1]; alpha is composited over black."""
    image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / np.float32(255.0)
        rgb = rgba[..., :3] * rgba[..., 3:4]
        return rgb[..., 0] if mode in {"LA", "La"} else rgb
    if mode in {"1", "L", "I", "F"} or mode.startswith("I;16"):
        return _to_unit_float(np.asarray(image))
    if mode == "RGB":
        return np.asarray(image, dtype=np.float32) / np.float32(255.0)
    # CMYK, YCbCr, LAB, HSV, ...: Pillow knows the conversion.
    return np.asarray(image.convert("RGB"), dtype=np.float32) / np.float32(255.0)


def _read_dicom(source: Path | io.BytesIO, name: str) -> np.ndarray:
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError as error:  # pragma: no cover - depends on the optional extra
        msg = f"{name} is a DICOM file; reading DICOM needs pydicom: pip install 'fusionmedclip-anomalib[dicom]'"
        raise ImageReadError(msg) from error
    dataset = pydicom.dcmread(source, force=True)
    pixels = dataset.pixel_array
    samples_per_pixel = int(getattr(dataset, "SamplesPerPixel", 1))
    if samples_per_pixel == 1 and pixels.ndim == 3:
        pixels = pixels[0]  # multi-frame: first frame
    if samples_per_pixel == 3:
        return _to_unit_float(pixels[0] if pixels.ndim == 4 else pixels)
    values = apply_modality_lut(pixels, dataset)
    if "WindowCenter" in dataset or "VOILUTSequence" in dataset:
        values = apply_voi_lut(values, dataset)
    values = _scale_float(np.asarray(values, dtype=np.float32))
    if getattr(dataset, "PhotometricInterpretation", "") == "MONOCHROME1":
        values = 1.0 - values
    return values


def _decode(source: Path | bytes, name: str) -> np.ndarray:
    if isinstance(source, bytes):
        empty = not source
        dicom = (len(source) >= 132 and source[128:132] == b"DICM") or Path(name).suffix.lower() in DICOM_SUFFIXES
        stream: Path | io.BytesIO = io.BytesIO(source)
    else:
        empty = source.stat().st_size == 0
        dicom, stream = is_dicom(source), source
    if empty:
        msg = f"cannot decode {name}: the file is empty"
        raise ImageReadError(msg)
    try:
        if dicom:
            return _read_dicom(stream, name)
        with Image.open(stream) as image:
            image.load()
            return _pil_to_array(image)
    except ImageReadError:
        raise
    except UnidentifiedImageError as error:
        msg = f"cannot decode {name}: not a recognised image format"
        raise ImageReadError(msg) from error
    except Exception as error:  # Pillow and pydicom raise many exception types for damaged files
        msg = f"cannot decode {name}: {type(error).__name__}: {error}"
        raise ImageReadError(msg) from error


def read_grey_or_rgb(path: str | Path) -> np.ndarray:
    """Decode a file to float32 ``[H, W]`` (greyscale) or ``[H, W, 3]`` (colour) in ``[0, 1]``.

    Raises:
        FileNotFoundError: The file does not exist (the message names it).
        ImageReadError: The file cannot be decoded (the message names it and says why).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"image file not found: {path}"
        raise FileNotFoundError(msg)
    return _decode(path, str(path))


def decode_bytes(data: bytes, name: str) -> np.ndarray:
    """Like :func:`read_grey_or_rgb` for bytes already in memory (e.g. a zip member); ``name`` is for messages."""
    return _decode(data, name)


def read_grey(path: str | Path) -> np.ndarray:
    """Decode a file to float32 greyscale ``[H, W]`` in ``[0, 1]`` (colour images: ITU-R 601 luma)."""
    array = read_grey_or_rgb(path)
    if array.ndim == 3:
        array = array @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    return array


def read_image(path: str | Path, as_tensor: bool = False) -> np.ndarray | torch.Tensor:
    """Read any supported image as RGB float in ``[0, 1]``, like ``anomalib.data.utils.read_image``.

    Unlike anomalib's reader it decodes by content, composites alpha over black, scales 16-bit data instead of
    saturating it, applies EXIF orientation and reads DICOM (with the optional ``pydicom``).

    Args:
        path: Image file.
        as_tensor: Return a ``torchvision.tv_tensors.Image`` ``[3, H, W]`` instead of a numpy ``[H, W, 3]`` array.

    Returns:
        float32 RGB image in ``[0, 1]``.

    Raises:
        FileNotFoundError: The file does not exist.
        ImageReadError: The file cannot be decoded.

    Example:
        >>> read_image("brain.png").shape  # doctest: +SKIP
        (240, 240, 3)
    """
    array = read_grey_or_rgb(path)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not as_tensor:
        return array
    import torch
    from torchvision.tv_tensors import Image as TVImage

    return TVImage(torch.from_numpy(array).permute(2, 0, 1).contiguous())


def _resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(resized) > 0


def read_mask(paths: str | Path | Sequence[str | Path], size: tuple[int, int] | None = None) -> np.ndarray:
    """Read one or several mask files as one boolean ``[H, W]`` mask.

    Each file is decoded like an image and reduced to grey (colour masks: the brightest channel). A file whose
    largest value is 0 or 1 is a label image (foreground > 0); any other is thresholded at > 127 on the 0..255
    scale, which removes the ringing of lossy JPEG masks. Several files are merged with a logical OR; a mask
    whose size differs from ``size`` (the image's ``(height, width)``) is resized with nearest neighbour.

    Args:
        paths: One mask file, or several for the same image (e.g. BUSI's ``x_mask.png`` and ``x_mask_1.png``).
        size: Target ``(height, width)``; default: the first mask's size.

    Returns:
        Boolean mask ``[H, W]``.

    Raises:
        FileNotFoundError, ImageReadError: naming the offending file.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    return merge_masks([binarize_mask(read_grey_or_rgb(path)) for path in paths], size)


def binarize_mask(values: np.ndarray) -> np.ndarray:
    """Decoded mask (float ``[H, W]`` or ``[H, W, C]`` in [0, 1]) -> bool ``[H, W]``, by the rule of :func:`read_mask`."""
    if values.ndim == 3:
        values = values.max(axis=2)
    scaled = np.rint(values * 255.0)
    return scaled > 0 if scaled.max() <= _LABEL_IMAGE_MAX else scaled > 127


def merge_masks(masks: Sequence[np.ndarray], size: tuple[int, int] | None = None) -> np.ndarray:
    """OR several bool masks, each resized (nearest neighbour) to ``size`` (default: the first mask's size)."""
    if not masks:
        msg = "merging masks needs at least one mask"
        raise ValueError(msg)
    target = tuple(size) if size is not None else masks[0].shape
    merged = np.zeros(target, dtype=bool)
    for mask in masks:
        merged |= mask if mask.shape == target else _resize_nearest(mask, target)
    return merged


def probe_image(path: str | Path) -> tuple[int, int]:
    """Cheaply check that a file looks like a readable image and return its ``(height, width)``.

    Only the header is parsed (no pixel decoding), so truncated files may still pass; :func:`read_image` names
    them when they are decoded.

    Raises:
        FileNotFoundError, ImageReadError: naming the offending file.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"image file not found: {path}"
        raise FileNotFoundError(msg)
    if path.stat().st_size == 0:
        msg = f"cannot decode {path}: the file is empty"
        raise ImageReadError(msg)
    if is_dicom(path):
        array = read_grey_or_rgb(path)
        return int(array.shape[0]), int(array.shape[1])
    try:
        with Image.open(path) as image:
            width, height = image.size
    except UnidentifiedImageError as error:
        msg = f"cannot decode {path}: not a recognised image format"
        raise ImageReadError(msg) from error
    except (OSError, SyntaxError) as error:
        msg = f"cannot decode {path}: {type(error).__name__}: {error}"
        raise ImageReadError(msg) from error
    return height, width

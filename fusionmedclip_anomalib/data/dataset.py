"""The anomalib dataset behind every medical datamodule.

It reads images and masks with this package's robust reader (:mod:`.image_io`) instead of anomalib's, merges
several mask files per image, resizes size-mismatched masks with nearest neighbour, and can render a
synthesised validation anomaly on the fly for rows that ask for one (``synthetic_seed >= 0``).

The samples DataFrame has anomalib's columns (``image_path``, ``split``, ``label``, ``label_index``,
``mask_path``) plus ``mask_paths`` (a tuple: all mask files of the row) and ``synthetic_seed``.

Example:
    >>> dataset = MedicalDataset(samples_frame(rows, task="segmentation"))  # doctest: +SKIP
    >>> item = dataset[0]; item.image.shape, item.gt_mask.dtype
    (torch.Size([3, 224, 224]), torch.uint8)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from anomalib import TaskType
from anomalib.data.dataclasses import ImageItem
from anomalib.data.datasets.base.image import AnomalibDataset
from torchvision.transforms.v2 import Transform
from torchvision.tv_tensors import Image, Mask

from .image_io import read_image, read_mask
from .synthetic_validation import synthesize_anomaly

__all__ = ["MedicalDataset", "SampleRow", "samples_frame"]


@dataclass(frozen=True)
class SampleRow:
    """One dataset row before it becomes a DataFrame line."""

    image_path: str
    label_index: int
    split: str
    mask_paths: tuple[str, ...] = ()
    synthetic_seed: int = -1


def samples_frame(rows: Sequence[SampleRow], task: TaskType | str) -> pd.DataFrame:
    """Build the samples DataFrame that :class:`MedicalDataset` and anomalib expect."""
    frame = pd.DataFrame(
        {
            "image_path": [row.image_path for row in rows],
            "split": [row.split for row in rows],
            "label": ["abnormal" if row.label_index else "normal" for row in rows],
            "label_index": pd.Series([row.label_index for row in rows], dtype="int64"),
            "mask_path": [row.mask_paths[0] if row.mask_paths else "" for row in rows],
            "mask_paths": [tuple(row.mask_paths) for row in rows],
            "synthetic_seed": pd.Series([row.synthetic_seed for row in rows], dtype="int64"),
        },
    )
    frame.attrs["task"] = TaskType(task).value
    return frame


class MedicalDataset(AnomalibDataset):
    """An anomalib dataset over prepared medical images.

    Args:
        samples: DataFrame from :func:`samples_frame` (its ``attrs["task"]`` decides whether masks are produced).
        augmentations: Transforms applied to image (and mask); anomalib's datamodule appends the model's Resize.
        name: Dataset name (anomalib uses it for output folders).

    Example:
        >>> frame = samples_frame([SampleRow("/data/x.png", 0, "test")], task="classification")  # doctest: +SKIP
        >>> MedicalDataset(frame, name="mydata")[0].gt_label
        tensor(0)
    """

    def __init__(self, samples: pd.DataFrame, augmentations: Transform | None = None, name: str = "medical") -> None:
        super().__init__(augmentations=augmentations)
        self._dataset_name = name
        task = samples.attrs.get("task", TaskType.CLASSIFICATION.value)
        self.samples = samples
        self.samples.attrs["task"] = task

    @property
    def name(self) -> str:
        """Dataset name given at construction."""
        return self._dataset_name

    def __getitem__(self, index: int) -> ImageItem:
        """Read (or synthesise) one item; errors name the offending file."""
        row = self.samples.iloc[index]
        label_index = int(row.label_index)
        array = read_image(row.image_path)
        mask_array: np.ndarray | None = None
        if int(row.synthetic_seed) >= 0:
            array, mask_array = synthesize_anomaly(array, np.random.SeedSequence(int(row.synthetic_seed)))
        elif self.task == TaskType.SEGMENTATION:
            if label_index == 1 and row.mask_paths:
                mask_array = read_mask(list(row.mask_paths), size=array.shape[:2])
            else:
                mask_array = np.zeros(array.shape[:2], dtype=bool)

        image = Image(torch.from_numpy(array).permute(2, 0, 1).contiguous())
        gt_mask = None if mask_array is None else Mask(torch.from_numpy(mask_array.astype(np.uint8)))
        if self.augmentations is not None:
            if gt_mask is None:
                image = self.augmentations(image)
            else:
                image, gt_mask = self.augmentations(image, gt_mask)
        return ImageItem(
            image=image,
            gt_mask=gt_mask,
            gt_label=torch.tensor(label_index),
            image_path=str(row.image_path),
            mask_path=str(row.mask_path) or None,
        )

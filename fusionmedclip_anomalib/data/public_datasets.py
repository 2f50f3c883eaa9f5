"""The paper's three datasets (SPEC §6) as datamodules: BrainMRI, BUSI and CheXpert.

Each reads the prepared layout ``<root>/<name>`` (default name: ``brainmri``, ``busi``, ``chexpert``). Given a
``source`` (the raw download: folder or zip) and no prepared copy yet, the first ``setup`` prepares it, exactly
like ``fusionmedclip prepare <dataset> --source <source> --output <root>`` with split seed 0.

Example:
    >>> dm = BUSI(root="datasets", source="Dataset_BUSI_with_GT.zip", k_shot=16, seed=0)  # doctest: +SKIP
    >>> dm.setup(); len(dm.test_data)
    748
"""

from __future__ import annotations

from pathlib import Path

from torchvision.transforms.v2 import Transform

from .layout import samples_file
from .medical_folder import MedicalFolder

__all__ = ["BUSI", "BrainMRI", "CheXpert"]


class _PaperDataset(MedicalFolder):
    """A :class:`MedicalFolder` with a default name and optional preparation from the raw download.

    Args:
        root: Root of prepared datasets.
        source: Raw download (folder or zip) to prepare from when ``<root>/<name>`` is not prepared yet.
        name: Dataset folder name (default: the dataset's).
        Other arguments: as :class:`MedicalFolder`.
    """

    dataset = ""

    def __init__(
        self,
        root: str | Path,
        source: str | Path | None = None,
        name: str | None = None,
        k_shot: int | None = 16,
        seed: int = 0,
        support_set: str | Path | None = None,
        val_split_mode: str = "synthetic",
        val_max_images: int = 32,
        lenient: bool = False,
        train_batch_size: int = 8,
        eval_batch_size: int = 32,
        num_workers: int = 0,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
    ) -> None:
        super().__init__(
            root=root,
            name=name or self.dataset,
            k_shot=k_shot,
            seed=seed,
            support_set=support_set,
            val_split_mode=val_split_mode,
            val_max_images=val_max_images,
            lenient=lenient,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
        )
        self.source = None if source is None else Path(source).expanduser()

    def ensure_prepared(self) -> None:
        """Prepare from ``source`` when the layout is missing; otherwise as :class:`MedicalFolder`."""
        if self.source is not None and not samples_file(self.root, self.name, "train").is_file():
            from .prepare import prepare_dataset

            report = prepare_dataset(self.dataset, self.source, self.root, name=self.name, lenient=self.lenient)
            print("\n".join(report.lines()))
        super().ensure_prepared()


class BrainMRI(_PaperDataset):
    """Kaggle "Brain MRI Images for Brain Tumor Detection": image-level labels, no masks.

    Paper protocol: 65 normal / 155 abnormal test images; the remaining 33 normals are the train pool.

    Example:
        >>> dm = BrainMRI(root="datasets", k_shot=16, seed=0)  # doctest: +SKIP
    """

    dataset = "brainmri"


class BUSI(_PaperDataset):
    """Breast Ultrasound Images (Al-Dhabyani et al. 2020) with lesion masks (pixel metrics apply).

    Paper protocol: 101 normal / 647 abnormal (benign + malignant) test images; 32 normals in the train pool.

    Example:
        >>> dm = BUSI(root="datasets", k_shot=4, seed=1)  # doctest: +SKIP
    """

    dataset = "busi"


class CheXpert(_PaperDataset):
    """CheXpert frontal chest radiographs (Irvin et al. 2019): image-level labels, no masks.

    Paper protocol: 250 normal / 250 abnormal test images; other "No Finding" frontal views form the pool.

    Example:
        >>> dm = CheXpert(root="datasets", k_shot=16, seed=2)  # doctest: +SKIP
    """

    dataset = "chexpert"

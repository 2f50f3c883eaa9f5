"""The k-shot support set of a run, for any anomalib datamodule, plus the protocol checks on the splits.

Datamodules that take ``k_shot`` (``MedicalFolder``, ``Phantom``) draw the support set themselves and offer a
manifest; for any other anomalib datamodule (``Folder``, ``MVTecAD``, ...) the harness draws k images of the
training set with the run's seed and writes its own manifest. Either way the splits are then checked: exactly k
training images, and no validation image that is also a test image.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from lightning.pytorch.trainer.states import TrainerFn

from fusionmedclip_anomalib.benchmark.factory import ProtocolError


@dataclass(frozen=True)
class SupportSet:
    """The support set a run trained on.

    Args:
        manifest: JSON-serialisable description (the datamodule's own manifest when it offers one, which it can
            read back to repeat the run; otherwise the harness's: k_shot, seed, files).
        files: training image paths, sorted.
        source: ``datamodule`` or ``harness`` (who drew it).
    """

    manifest: dict[str, Any]
    files: tuple[str, ...]
    source: str

    @property
    def sha256(self) -> str:
        """Hash of the sorted file list: equal across models of the same (dataset, k, seed) when the draw is."""
        return hashlib.sha256(json.dumps(sorted(self.files)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SplitSizes:
    """Number of images per split after the support set is drawn."""

    train: int
    val: int
    test: int
    test_abnormal: int


def prepare_support_set(datamodule: Any, k_shot: int, seed: int, native: bool) -> tuple[SupportSet, SplitSizes]:
    """Set the datamodule up for fitting, draw the support set if the datamodule does not, and check the splits.

    The datamodule is set up here, before ``Engine.fit``, with the trainer's stage value, so Lightning does not set
    it up again (and redraw) later; it only adds the model's resize then.

    Args:
        datamodule: an anomalib datamodule.
        k_shot: support-set size.
        seed: the run's seed.
        native: the datamodule took ``k_shot`` itself.

    Returns:
        The support set and the split sizes.

    Raises:
        ProtocolError: wrong number of training images, or validation images that are test images.
    """
    datamodule.prepare_data()
    datamodule.setup(TrainerFn.FITTING)
    train_paths = _image_paths(datamodule.train_data)
    if native:
        manifest = getattr(datamodule, "support_manifest", None)
        manifest = dict(manifest) if manifest else {"k_shot": k_shot, "seed": seed, "files": train_paths}
        source = "datamodule"
    else:
        if k_shot > len(train_paths):
            raise ProtocolError(f"k_shot={k_shot} but the training set has only {len(train_paths)} images.")
        chosen = np.sort(np.random.default_rng(seed).choice(len(train_paths), size=k_shot, replace=False))
        datamodule.train_data = datamodule.train_data.subsample(chosen.tolist())
        train_paths = _image_paths(datamodule.train_data)
        manifest = {"k_shot": k_shot, "seed": seed, "drawn_by": "fusionmedclip bench", "files": train_paths}
        source = "harness"
    if len(train_paths) != k_shot:
        raise ProtocolError(f"the datamodule gave {len(train_paths)} training images for k_shot={k_shot}.")
    test_paths = _image_paths(datamodule.test_data)
    val_data = getattr(datamodule, "val_data", None)
    val_paths = _image_paths(val_data) if val_data is not None else []
    shared = sorted(set(val_paths) & set(test_paths))
    if shared:
        raise ProtocolError(
            f"{len(shared)} validation images are test images (e.g. {shared[0]}): validation must not see the test "
            "set. Use a validation split from held-out normals (val_split_mode 'synthetic' or 'from_train') or none."
        )
    labels = datamodule.test_data.samples["label_index"].to_numpy()
    sizes = SplitSizes(len(train_paths), len(val_paths), len(test_paths), int((labels == 1).sum()))
    return SupportSet(manifest, tuple(sorted(train_paths)), source), sizes


def _image_paths(dataset: Any) -> list[str]:
    return [str(path) for path in dataset.samples["image_path"].tolist()]

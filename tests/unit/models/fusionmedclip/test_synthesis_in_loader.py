"""Anomaly synthesis in the training DataLoader: soft masks that survive anomalib's pre-processor, reproducible
randomness that is fresh every epoch, also from worker processes, and loaders other than a DataLoader left alone."""

import pytest
import torch
from anomalib.data import ImageBatch, ImageItem
from anomalib.pre_processing import PreProcessor
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import Resize

from fusionmedclip_anomalib.models.fusionmedclip.synthesis_step import (
    AnomalySynthesiser,
    SynthesisCollate,
    SynthesisedBatch,
    synthesise_in_loader,
)
from fusionmedclip_anomalib.perf.subjects import support_images


@pytest.fixture(scope="module")
def items() -> list[ImageItem]:
    """Eight brain phantoms at 96 px, as anomalib items (what a datamodule's dataset yields)."""
    return [ImageItem(image=image) for image in support_images(8, 96, "cpu")]


def loader_over(items: list[ImageItem], workers: int = 0, **kwargs) -> DataLoader:
    return DataLoader(items, batch_size=4, shuffle=True, num_workers=workers, collate_fn=ImageBatch.collate, **kwargs)


def epoch(loader: DataLoader) -> list[SynthesisedBatch]:
    return list(loader)


def same(first: list[SynthesisedBatch], second: list[SynthesisedBatch]) -> bool:
    return all(
        torch.equal(a.image, b.image) and torch.equal(a.gt_mask, b.gt_mask) for a, b in zip(first, second, strict=True)
    )


def test_collate_synthesises_soft_masks_on_the_collated_images(items):
    torch.manual_seed(0)
    batch = SynthesisCollate(ImageBatch.collate, AnomalySynthesiser())(items)
    assert isinstance(batch, SynthesisedBatch) and len(batch) == 8
    assert batch.image.shape == (8, 3, 96, 96) and batch.gt_mask.shape == (8, 96, 96)
    assert batch.gt_mask.dtype == torch.float32
    assert 0.0 <= batch.gt_mask.min() and batch.gt_mask.max() <= 1.0
    assert ((batch.gt_mask > 0) & (batch.gt_mask < 1)).any(), "masks are soft, not cast to bool"
    assert (batch.gt_mask.flatten(1).amax(dim=1) > 0.5).any(), "some image carries an anomaly"
    assert 0.0 <= batch.image.min() and batch.image.max() <= 1.0
    # outside every mask the image is the normal one (up to uint8 rounding of the grey levels)
    original = torch.stack([item.image for item in items])
    untouched = (batch.gt_mask == 0).unsqueeze(1).expand_as(original)
    assert (batch.image - original)[untouched].abs().max() <= 1 / 255 + 1e-6
    images, masks = batch.tensors()
    assert type(images) is torch.Tensor and type(masks) is torch.Tensor


def test_pre_processor_resizes_images_and_masks_alike_and_keeps_masks_soft(items):
    torch.manual_seed(0)
    batch = SynthesisCollate(ImageBatch.collate, AnomalySynthesiser())(items)
    soft_values = batch.gt_mask.unique()
    PreProcessor(transform=Resize((48, 48), antialias=True)).on_train_batch_start(None, None, batch, 0)
    assert batch.image.shape == (8, 3, 48, 48) and batch.gt_mask.shape == (8, 48, 48)
    assert batch.gt_mask.dtype == torch.float32
    assert set(batch.gt_mask.unique().tolist()) <= set(soft_values.tolist()), "masks are resized as masks (nearest)"


def test_same_torch_seed_same_batches_and_every_call_draws_afresh(items):
    synthesiser, images = AnomalySynthesiser(), torch.stack([item.image for item in items])
    torch.manual_seed(3)
    first, second = synthesiser(images), synthesiser(images)
    torch.manual_seed(3)
    again = synthesiser(images)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], second[1])


def test_loader_yields_synthesised_batches_once_wrapped(items):
    loader = loader_over(items)
    assert isinstance(next(iter(loader)), ImageBatch)
    assert synthesise_in_loader(loader, AnomalySynthesiser()) is True
    assert synthesise_in_loader(loader, AnomalySynthesiser()) is False, "wrapping twice would synthesise twice"
    assert loader.collate_fn.collate_fn == ImageBatch.collate
    batches = epoch(loader)
    assert [type(batch) for batch in batches] == [SynthesisedBatch, SynthesisedBatch]


def test_anything_but_a_dataloader_is_left_alone(items):
    loaders = [loader_over(items), loader_over(items)]
    assert synthesise_in_loader(loaders, AnomalySynthesiser()) is False
    assert synthesise_in_loader(None, AnomalySynthesiser()) is False
    assert all(loader.collate_fn == ImageBatch.collate for loader in loaders)


@pytest.mark.parametrize("persistent", [False, True])
def test_worker_synthesis_is_reproducible_and_fresh_every_epoch(items, persistent):
    def two_epochs() -> tuple[list, list]:
        loader = loader_over(items, workers=1, persistent_workers=persistent)
        synthesise_in_loader(loader, AnomalySynthesiser())
        torch.manual_seed(11)
        return epoch(loader), epoch(loader)

    first, second = two_epochs()
    assert all(isinstance(batch, SynthesisedBatch) for batch in first + second)
    assert not same(first, second), "a new epoch synthesises new anomalies"
    assert all(same(a, b) for a, b in zip((first, second), two_epochs(), strict=True)), "same seed, same batches"


def test_persistent_workers_started_before_wrapping_are_replaced(items):
    loader = loader_over(items, workers=1, persistent_workers=True)
    assert all(isinstance(batch, ImageBatch) for batch in epoch(loader))  # workers started with the plain collate
    synthesise_in_loader(loader, AnomalySynthesiser())
    assert all(isinstance(batch, SynthesisedBatch) for batch in epoch(loader))

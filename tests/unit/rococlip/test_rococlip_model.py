"""ROCOCLIP LightningModule: defaults, which parameters train, loss and retrieval improve, gathered loss, callbacks."""

import inspect
import itertools
import math
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch.utils.data import default_collate

from fusionmedclip_anomalib.data.roco import ROCO
from fusionmedclip_anomalib.models.rococlip.lightning_model import ROCOCLIP
from fusionmedclip_anomalib.models.rococlip.retrieval import retrieval_recall

SPEC_DEFAULTS = {
    "backbone": "ViT-L-14",
    "pretrained": "openai",
    "train_text": False,
    "lr": 3e-6,
    "weight_decay": 0.05,
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "layer_decay": 0.8,
    "warmup_epochs": 5.0,
    "min_lr": 1e-7,
    "label_smoothing": 0.1,
    "mixup_alpha": 0.2,
    "text_mixup": True,
    "dropout": 0.1,
    "early_stopping_patience": 5,
    "early_stopping_min_delta": 1e-4,
    "retrieval_ks": (1, 5, 10),
}


def _model(checkpoint: Path, **kwargs) -> ROCOCLIP:
    torch.manual_seed(0)
    return ROCOCLIP(backbone="fmc-tiny", pretrained=str(checkpoint), **kwargs)


@pytest.fixture(scope="module")
def pairs(roco_root: Path) -> dict[str, torch.Tensor]:
    """All 32 training pairs as one batch, evaluation transform (deterministic)."""
    dataset = ROCO(roco_root, backbone="fmc-tiny", num_workers=0).dataset("validation")
    return default_collate([dataset[i] for i in range(len(dataset))])


def _subset(batch: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
    return {key: value[:count] for key, value in batch.items()}


def _clean_loss(model: ROCOCLIP, batch: dict[str, torch.Tensor]) -> float:
    """The validation loss (no mixup, no dropout) of a batch."""
    model.eval()
    with torch.no_grad():
        images, texts = model(batch["image"], batch["text"])
        loss = model._loss(images, texts, 1.0, torch.arange(images.shape[0]))
    model.train()
    return float(loss)


def _train(model: ROCOCLIP, batch: dict[str, torch.Tensor], steps: int, after_step=None) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=model.hparams.lr)
    losses = []
    for step in range(steps):
        with warnings.catch_warnings():  # self.log() without a trainer
            warnings.simplefilter("ignore")
            loss = model.training_step(batch, step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if after_step is not None:
            after_step()
    return losses


def test_constructor_defaults_are_spec_table_a2():
    parameters = inspect.signature(ROCOCLIP.__init__).parameters
    for name, value in SPEC_DEFAULTS.items():
        assert parameters[name].default == value, name


def test_early_stopping_on_validation_loss(initial_checkpoint: Path):
    model = _model(initial_checkpoint, early_stopping_patience=3, early_stopping_min_delta=0.01)
    (callback,) = model.configure_callbacks()
    assert isinstance(callback, EarlyStopping)
    assert (callback.monitor, callback.mode, callback.patience) == ("val_loss", "min", 3)
    assert math.isclose(abs(callback.min_delta), 0.01)
    assert _model(initial_checkpoint, early_stopping=False).configure_callbacks() == []


def test_model_is_in_train_mode_and_exposes_preprocessing(initial_checkpoint: Path):
    model = _model(initial_checkpoint)
    assert model.clip.training
    assert model.image_size == 224
    assert len(model.image_mean) == 3 and len(model.image_std) == 3


@pytest.mark.parametrize(
    ("train_text", "train_logit_scale"),
    [(False, False), (True, False), (False, True)],
    ids=["default", "text", "scale"],
)
def test_only_the_intended_parameters_change(
    initial_checkpoint: Path, pairs, train_text: bool, train_logit_scale: bool
):
    model = _model(initial_checkpoint, lr=1e-3, train_text=train_text, train_logit_scale=train_logit_scale)
    before = {name: value.clone() for name, value in model.clip.state_dict().items()}
    _train(model, _subset(pairs, 4), steps=1)
    changed = {name for name, value in model.clip.state_dict().items() if not torch.equal(value, before[name])}
    vision = {name for name in before if name.startswith("visual.")}
    text = set(before) - vision - {"logit_scale"}
    assert changed >= vision, f"vision parameters left unchanged: {sorted(vision - changed)}"
    assert ("logit_scale" in changed) == train_logit_scale
    if train_text:
        assert changed >= text
    else:
        assert not changed & text, f"frozen text tower changed: {sorted(changed & text)}"
        assert all(param.grad is None for name, param in model.clip.named_parameters() if name in text)


def test_loss_decreases_over_a_few_steps(initial_checkpoint: Path, pairs):
    model = _model(initial_checkpoint, lr=1e-3)
    batch = _subset(pairs, 8)
    start = _clean_loss(model, batch)
    losses = [start]
    _train(model, batch, steps=4, after_step=lambda: losses.append(_clean_loss(model, batch)))
    assert losses[-1] < start - 0.02, losses
    assert sum(b < a for a, b in itertools.pairwise(losses)) >= 3, losses


@pytest.mark.slow
def test_retrieval_on_the_training_pairs_rises_above_chance(initial_checkpoint: Path, pairs):
    model = _model(initial_checkpoint, lr=1e-3)
    batch = {key: value[::2] for key, value in pairs.items()}  # 16 pairs, 16 different captions
    ks = (1, 5)

    def recall() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            images, texts = model(batch["image"], batch["text"])
        model.train()
        return retrieval_recall(images, texts, batch["caption_id"], ks=ks)

    chance = sum(k / 16 for k in ks) / len(ks)
    before = recall()
    _train(model, batch, steps=8)
    after = recall()
    assert after["mean_recall"] > max(2 * chance, before["mean_recall"] + 0.15), (before, after)
    assert after["i2t_recall@1"] > 1 / 16 and after["t2i_recall@1"] > 1 / 16, after


def test_gathered_loss_equals_the_full_batch_loss(initial_checkpoint: Path, pairs):
    """Two simulated ranks scoring their local rows against the gathered batch average to the one-device loss."""
    model = _model(initial_checkpoint)
    model.eval()
    with torch.no_grad():
        images, texts = model(pairs["image"][:8], pairs["text"][:8])
        full = model._loss(images, texts, 1.0, torch.arange(8))
        local_losses = []
        for rank in range(2):
            local_images, local_texts = images[4 * rank : 4 * rank + 4], texts[4 * rank : 4 * rank + 4]

            def gather(features, sync_grads, rank=rank, local_images=local_images):
                return (images if features is local_images else texts), 4 * rank

            model._gather = gather
            local_losses.append(model._loss(local_images, local_texts, 1.0, torch.arange(4)))
    assert torch.allclose(torch.stack(local_losses).mean(), full, atol=1e-6)

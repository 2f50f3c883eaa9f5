"""The things being timed: FusionMedCLIP (LoRA merged and unmerged), the bare open_clip vision tower it is compared
with, and one training step, all built from one seed so that the bare tower has exactly FusionMedCLIP's weights."""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from anomalib.data import ImageBatch, ImageItem
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from torchvision import tv_tensors

from fusionmedclip_anomalib.clip import load_clip
from fusionmedclip_anomalib.models.fusionmedclip.lightning_model import FusionMedCLIP, native_image_size
from fusionmedclip_anomalib.models.fusionmedclip.lora import inject_lora
from fusionmedclip_anomalib.models.fusionmedclip.synthesis_step import SynthesisCollate, SynthesisedBatch

# Feature layers per backbone: the paper's (14, 18, 24) of 24 blocks, and the same relative depths elsewhere.
DEFAULT_FEATURE_LAYERS: dict[str, tuple[int, ...]] = {
    "ViT-L-14": (14, 18, 24),
    "ViT-B-16": (7, 9, 12),
    "fmc-tiny": (2, 4, 6),
}


def default_feature_layers(backbone: str) -> tuple[int, ...]:
    """The feature layers measured for ``backbone`` unless the user names others."""
    if backbone in DEFAULT_FEATURE_LAYERS:
        return DEFAULT_FEATURE_LAYERS[backbone]
    import open_clip

    from fusionmedclip_anomalib.clip import register_bundled_configs

    register_bundled_configs()
    blocks = int(open_clip.get_model_config(backbone)["vision_cfg"]["layers"])
    return tuple(sorted({max(1, round(blocks * fraction)) for fraction in (14 / 24, 18 / 24, 1.0)}))


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``device`` for ``precision == "bf16"``, a no-op context for ``fp32``."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def support_images(batch_size: int, size: int, device: str, seed: int = 0) -> torch.Tensor:
    """RGB images in [0, 1] ``(B, 3, size, size)``: procedural brain-MRI phantoms, so that anomaly synthesis finds
    a foreground and does the same work as on real scans."""
    import numpy as np

    from fusionmedclip_anomalib.data.phantom_render import render_phantom

    grey = np.stack([render_phantom("brain", seed=seed + index, size=size)[0] for index in range(batch_size)])
    images = torch.from_numpy(grey).float().div(255.0)
    return images.unsqueeze(1).expand(-1, 3, -1, -1).contiguous().to(device)


@dataclass
class FusionMedCLIPSubjects:
    """FusionMedCLIP in its three states plus the bare backbone, on one device.

    Attributes:
        module: the anomalib module (training state: LoRA unmerged, train mode); its ``model`` is trained.
        merged: an eval-mode copy with LoRA merged (what validation, ``Engine.test``/``predict`` and export run).
        unmerged: an eval-mode copy with LoRA unmerged (every attention layer then builds its adapted weights on
            each forward, and every MLP linear adds its low-rank path, as in training).
        bare: the open_clip vision tower with the same base weights, no LoRA, eval mode.
        bare_lora: the open_clip vision tower with the same LoRA configuration (the same trainable set inside the
            backbone), train mode, for the training baseline.
        feature_layers: 1-based feature layers.
        device: where everything lives.
        precision: ``fp32`` or ``bf16``.
        image_size: the backbone's input size.
        optimiser: ``module``'s AdamW with the per-group learning rates, shared by the training-step subjects.
    """

    module: FusionMedCLIP
    merged: nn.Module
    unmerged: nn.Module
    bare: nn.Module
    bare_lora: nn.Module
    feature_layers: tuple[int, ...]
    device: str
    precision: str
    image_size: int

    @classmethod
    def build(
        cls, backbone: str, feature_layers: Sequence[int], device: str, precision: str, seed: int = 0
    ) -> FusionMedCLIPSubjects:
        """Build FusionMedCLIP with random weights (``pretrained=None``) and the bare towers with the same weights."""
        layers = tuple(int(layer) for layer in feature_layers)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
            module = FusionMedCLIP(
                backbone=backbone,
                pretrained=None,
                feature_layers=layers,
                precision=precision,
                seed=seed,
                visualizer=False,
            )
            bare = same_weights_visual(backbone, seed)
        bare_lora = copy.deepcopy(bare)
        hparams = module.hparams
        inject_lora(bare_lora, hparams.lora_rank, hparams.lora_alpha, hparams.lora_dropout)
        module.to(device)
        module.model.train()
        merged = copy.deepcopy(module.model).eval()
        merged.merge_lora()
        unmerged = copy.deepcopy(module.model).eval()
        return cls(
            module=module,
            merged=merged,
            unmerged=unmerged,
            bare=bare.to(device).eval(),
            bare_lora=bare_lora.to(device).train(),
            feature_layers=layers,
            device=device,
            precision=precision,
            image_size=native_image_size(backbone),
        )

    def __post_init__(self) -> None:
        self.optimiser = self.module.configure_optimizers()

    # -- inference -------------------------------------------------------------------------------------------------
    def inference(self, model: nn.Module, images: torch.Tensor) -> Callable[[], object]:
        """One batch through a FusionMedCLIP copy under ``torch.inference_mode`` (its precision is its own option)."""

        def run() -> object:
            with torch.inference_mode():
                return model(images)

        return run

    def bare_inference(self, images: torch.Tensor) -> Callable[[], object]:
        """One batch through the bare tower up to the deepest feature block, open_clip's own code path, same input
        (normalised as FusionMedCLIP does it) and precision."""
        normalised = (images - self.merged.pixel_mean) / self.merged.pixel_std

        def run() -> object:
            with torch.inference_mode(), autocast(self.device, self.precision):
                return bare_features(self.bare, normalised, self.feature_layers)

        return run

    # -- training --------------------------------------------------------------------------------------------------
    def training_step(
        self, images: torch.Tensor, synthesise: bool = True, loader_workers: int = 1
    ) -> Callable[[], object]:
        """One optimiser step at ``len(images)`` as FusionMedCLIP trains: the batch comes from a DataLoader whose
        workers collate and synthesise it (what ``FusionMedCLIP.on_train_epoch_start`` arranges), then forward,
        focal + Dice loss, backward, AdamW step. With ``synthesise=False`` the same kind of loader hands out copies
        of pairs synthesised once beforehand, so the difference between the two is synthesis alone. The seconds
        each step waited for its batch are appended to ``run.batch_waits``."""
        module, optimiser = self.module, self.optimiser
        collate = SynthesisCollate(ImageBatch.collate, module.synthesiser) if synthesise else FixedPairs(images, module)
        batches = loader_batches(images, collate, loader_workers)
        waits: list[float] = []

        def run() -> object:
            start = time.perf_counter()
            synthesised, masks = (tensor.to(self.device) for tensor in next(batches).tensors())
            waits.append(time.perf_counter() - start)
            loss = module.loss(module.model.anomaly_map(synthesised), masks)
            loss.backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
            return loss

        run.batch_waits = waits
        return run

    def synthesis(self, images: torch.Tensor) -> Callable[[], object]:
        """Anomaly synthesis of one batch alone."""
        return lambda: self.module.synthesiser(images)

    def bare_forward_backward(self, images: torch.Tensor) -> Callable[[], object]:
        """One forward + backward of the bare tower with LoRA (FusionMedCLIP's trainable set inside the backbone)
        up to the deepest feature block; the loss is a plain sum over the feature blocks' outputs."""
        normalised = (images - self.merged.pixel_mean) / self.merged.pixel_std
        parameters = [p for p in self.bare_lora.parameters() if p.requires_grad]

        def run() -> object:
            with autocast(self.device, self.precision):
                features = bare_features(self.bare_lora, normalised, self.feature_layers)
                loss = sum(feature.float().mean() for feature in features)
            loss.backward()
            for parameter in parameters:
                parameter.grad = None
            return loss

        return run


class FixedPairs:
    """A ``collate_fn`` that ignores its items and returns fresh copies of one synthesised batch of ``images``."""

    def __init__(self, images: torch.Tensor, module: FusionMedCLIP) -> None:
        self.images, self.masks = (tensor.cpu() for tensor in module.synthesiser(images))

    def __call__(self, items: object) -> SynthesisedBatch:
        return SynthesisedBatch(
            image=tv_tensors.Image(self.images.clone()), gt_mask=tv_tensors.Mask(self.masks.clone())
        )


def loader_batches(images: torch.Tensor, collate_fn: Callable, workers: int = 1) -> Iterator[SynthesisedBatch]:
    """Endless batches of ``images`` (as anomalib items) from a DataLoader with ``workers`` processes collating with
    ``collate_fn``; one batch in flight per worker, as in training."""
    items = [ImageItem(image=image) for image in images.cpu()]
    loader = DataLoader(
        items,
        batch_size=len(items),
        sampler=RandomSampler(items, replacement=True, num_samples=len(items) * 10**6),
        num_workers=workers,
        prefetch_factor=1 if workers else None,
        collate_fn=collate_fn,
    )
    return iter(loader)


def same_weights_visual(backbone: str, seed: int) -> nn.Module:
    """The vision tower of ``backbone`` with the random weights :class:`FusionMedCLIP` gets for ``seed`` (it seeds
    the global generator right before building the backbone)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        visual = load_clip(backbone, None).visual
    visual.requires_grad_(False)
    return visual


def bare_features(visual: nn.Module, images: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
    """open_clip's own patch embedding and block loop (``forward_intermediates``) up to the deepest of ``layers``
    (1-based); returns the tokens ``(B, 1 + N, C)`` of those blocks.

    As in FusionMedCLIP (:func:`~fusionmedclip_anomalib.clip.run_vision_blocks`), the residual stream keeps the
    input's dtype, so under bf16 autocast both run the same mixed precision: on CPU a bfloat16 stream would send
    attention down a PyTorch slow path many times slower, and the comparison would measure that instead.
    """
    tokens = visual._embeds(images).to(images.dtype)  # open_clip's (private, stable in 3.x) patch embedding
    _, intermediates = visual.transformer.forward_intermediates(
        tokens, indices=[layer - 1 for layer in layers], stop_early=True
    )
    return intermediates


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (unchanged when ``None``), restoring the previous count after."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

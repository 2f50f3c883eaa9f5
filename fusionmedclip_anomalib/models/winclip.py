"""WinCLIP with a configurable open_clip backbone and pretrained tag.

anomalib 2.7's ``WinClip`` builds ``ViT-B-16-plus-240`` with the ``laion400m_e31`` weights from module constants,
so it can neither run offline nor on the backbone FusionMedCLIP uses. This thin subclass takes both as constructor
arguments and builds the CLIP model through :func:`fusionmedclip_anomalib.clip.load_clip` (tags, local checkpoint
files, ``None`` for random weights, a fast clear error offline). Everything else - prompt ensemble, sliding windows,
few-shot reference collection, scoring - is anomalib's own code, so at the default backbone and tag the outputs are
identical to ``anomalib.models.WinClip`` with ``independent_windows=False``.

One fix is on by default (``independent_windows=True``): anomalib 2.7 was written for open_clip < 2.26, whose vision
transformer took sequence-first input, and transposes the window tokens before calling it. open_clip 3 is batch
first, so there the transposed call runs attention *across* all windows of all images in the batch instead of within
each window: window embeddings, hence scores, depend on the other images in the batch, and the pass is quadratic in
the number of windows. With the fix each window is encoded on its own, as in the WinCLIP paper.

Example:
    >>> from fusionmedclip_anomalib.models.winclip import WinClip
    >>> model = WinClip(backbone="fmc-tiny", pretrained=None, k_shot=4)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

import torch
from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.models.image.winclip.lightning_model import WinClip as AnomalibWinClip
from anomalib.models.image.winclip.torch_model import BACKBONE, PRETRAINED, TEMPERATURE, WinClipModel
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from open_clip.transform import PreprocessCfg, image_transform_v2
from torch import nn
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import Compose, InterpolationMode, Normalize, Resize

from fusionmedclip_anomalib.clip import load_clip, preprocess_stats

logger = logging.getLogger(__name__)

__all__ = ["ConfigurableWinClipModel", "WinClip"]


class ConfigurableWinClipModel(WinClipModel):
    """anomalib's ``WinClipModel`` on any open_clip ViT with a CLIP tokenizer.

    Args:
        backbone: open_clip architecture name, e.g. ``ViT-B-16-plus-240`` (anomalib's), ``ViT-L-14``, ``fmc-tiny``.
        pretrained: open_clip pretrained tag, path of a local checkpoint, or ``None`` for random weights.
        class_name: object class used in the prompt ensemble.
        reference_images: few-shot reference images ``(K, C, H, W)``.
        scales: sliding-window scales.
        apply_transform: apply the backbone's own preprocessing to inputs.
        independent_windows: encode each sliding window on its own (see the module docstring); ``False`` gives
            anomalib 2.7's exact behaviour.

    Example:
        >>> model = ConfigurableWinClipModel("fmc-tiny", pretrained=None, class_name="brain")  # doctest: +SKIP
        >>> model(torch.rand(2, 3, 224, 224)).anomaly_map.shape  # doctest: +SKIP
        torch.Size([2, 224, 224])
    """

    def __init__(
        self,
        backbone: str = BACKBONE,
        pretrained: str | PathLike | None = PRETRAINED,
        class_name: str | None = None,
        reference_images: torch.Tensor | None = None,
        scales: tuple = (2, 3),
        apply_transform: bool = False,
        independent_windows: bool = True,
    ) -> None:
        # WinClipModel.__init__ builds the hard-coded backbone, so initialise the mixins/nn.Module directly and set
        # up the same state with the chosen backbone.
        super(WinClipModel, self).__init__()
        self.backbone = backbone
        self.pretrained = str(pretrained) if isinstance(pretrained, PathLike) else pretrained
        self.temperature = TEMPERATURE
        self.class_name = class_name
        self.reference_images = reference_images
        self.scales = scales
        self.apply_transform = apply_transform
        self.independent_windows = independent_windows
        self.k_shot = 0

        self.clip = load_clip(backbone, self.pretrained)
        self._transform = image_transform_v2(PreprocessCfg(**self.clip.visual.preprocess_cfg), is_train=False)
        self.clip.visual.output_tokens = True
        self.grid_size = self.clip.visual.grid_size

        self.register_buffer_list("masks", self._generate_masks(), persistent=False)
        self.register_buffer("_text_embeddings", torch.empty(0))
        self.register_buffer_list("_visual_embeddings", [torch.empty(0) for _ in self.scales])
        self.register_buffer("_patch_embeddings", torch.empty(0))

        self.setup(class_name, reference_images)

    def _get_window_embeddings(self, feature_map: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Embeddings of every sliding window: ``[B, n_windows, D]``.

        Args:
            feature_map: patch tokens after the patch embedding, class token first: ``[B, 1 + P, width]``.
            masks: patch indices of each window, ``[patches_per_window, n_windows]``.

        Returns:
            One embedding per window and image.
        """
        visual = self.clip.visual
        if not self.independent_windows or not getattr(visual.transformer, "batch_first", False):
            return super()._get_window_embeddings(feature_map, masks)
        batch_size, n_windows = feature_map.shape[0], masks.shape[1]
        class_token = torch.zeros(1, n_windows, dtype=masks.dtype, device=masks.device)
        token_index = torch.cat((class_token, masks + 1)).T  # [n_windows, 1 + patches_per_window]
        windows = feature_map[:, token_index]  # [B, n_windows, 1 + patches_per_window, width]
        tokens = windows.flatten(0, 1)  # one sequence per (image, window)
        tokens = visual.ln_pre(visual.patch_dropout(tokens))
        tokens = visual.ln_post(visual.transformer(tokens))
        pooled, _ = visual._global_pool(tokens)
        if visual.proj is not None:
            pooled = pooled @ visual.proj
        return pooled.reshape(batch_size, n_windows, -1)

    @property
    def image_size(self) -> tuple[int, int]:
        """Input resolution of the vision tower (height, width)."""
        size = self.clip.visual.image_size
        return (size, size) if isinstance(size, int) else tuple(size)


class WinClip(AnomalibWinClip):
    """WinCLIP zero-/few-shot anomaly detection on a chosen open_clip backbone.

    Same behaviour and arguments as ``anomalib.models.WinClip`` plus ``backbone`` and ``pretrained``. The default
    pre-processor resizes to the backbone's input size (bicubic) and normalises with the backbone's statistics, which
    at the default backbone is exactly anomalib's 240 px CLIP transform.

    Args:
        backbone: open_clip architecture name. Defaults to anomalib's ``ViT-B-16-plus-240``.
        pretrained: open_clip pretrained tag, local checkpoint path, or ``None`` for random weights (testing only).
            Defaults to anomalib's ``laion400m_e31``.
        class_name: object class in the prompt ensemble; the datamodule's category when ``None``.
        k_shot: number of normal reference images (0 = zero-shot).
        scales: sliding-window scales.
        few_shot_source: folder of reference images instead of the training set.
        independent_windows: encode each sliding window on its own; ``False`` reproduces anomalib 2.7 on
            open_clip 3, whose window pass attends across windows and images (see the module docstring).
        normalize_reference_images: anomalib takes the few-shot reference images from the train dataloader, where
            they are resized but not normalised (test images are). ``True`` applies the pre-processor's
            normalisation to them as well; ``False`` (default) keeps anomalib's behaviour.
        pre_processor: pre-processor instance or flag for the default one.
        post_processor: post-processor instance or flag for the default one.
        evaluator: evaluator instance or flag for the default one.
        visualizer: visualizer instance or flag for the default one.

    Example:
        >>> from anomalib.engine import Engine
        >>> model = WinClip(backbone="ViT-L-14", pretrained="openai", k_shot=16)  # doctest: +SKIP
        >>> Engine().fit(model, datamodule=datamodule)  # doctest: +SKIP
    """

    def __init__(
        self,
        backbone: str = BACKBONE,
        pretrained: str | None = PRETRAINED,
        class_name: str | None = None,
        k_shot: int = 0,
        scales: tuple = (2, 3),
        few_shot_source: Path | str | None = None,
        independent_windows: bool = True,
        normalize_reference_images: bool = False,
        pre_processor: nn.Module | bool = True,
        post_processor: nn.Module | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        init_args = {name: value for name, value in locals().items() if name in _HPARAMS}
        torch_model = ConfigurableWinClipModel(
            backbone=backbone,
            pretrained=pretrained,
            scales=scales,
            independent_windows=independent_windows,
        )
        if pre_processor is True:
            mean, std = preprocess_stats(torch_model.clip)
            pre_processor = self.configure_pre_processor(image_size=torch_model.image_size, mean=mean, std=std)
        # anomalib's WinClip.__init__ would build its hard-coded backbone: skip it and set its attributes here.
        AnomalibModule.__init__(
            self,
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        # Lightning collects init args only through zero-argument super() frames, which this __init__ skips
        self.save_hyperparameters(init_args)
        self.model = torch_model
        self.backbone = backbone
        self.pretrained = pretrained
        self.class_name = class_name
        self.k_shot = k_shot
        self.few_shot_source = Path(few_shot_source) if few_shot_source else None
        self.normalize_reference_images = normalize_reference_images
        self.is_setup = False

    @classmethod
    def configure_pre_processor(
        cls,
        image_size: tuple[int, int] | None = None,
        mean: tuple[float, ...] = (0.48145466, 0.4578275, 0.40821073),
        std: tuple[float, ...] = (0.26862954, 0.26130258, 0.27577711),
    ) -> PreProcessor:
        """Bicubic resize to the backbone's input size, then the backbone's normalisation.

        Args:
            image_size: input size of the backbone; anomalib's 240 px when ``None``.
            mean: RGB mean of the backbone's training data (OpenAI CLIP's by default).
            std: RGB standard deviation of the backbone's training data.

        Returns:
            The pre-processor.
        """
        size = tuple(image_size) if image_size is not None else (240, 240)
        return PreProcessor(
            transform=Compose(
                [
                    Resize(size, antialias=True, interpolation=InterpolationMode.BICUBIC),
                    Normalize(mean=mean, std=std),
                ]
            ),
        )

    def _get_class_name(self) -> str:
        """anomalib's choice (init arg, else the datamodule's category, else ``object``), never empty.

        Folder-style datamodules have an empty category, with which anomalib collects no text embeddings and
        fails at the first test batch; the datamodule's name is used instead.
        """
        name = super()._get_class_name()
        if name:
            return name
        datamodule = getattr(self.trainer, "datamodule", None) if getattr(self, "_trainer", None) else None
        return str(getattr(datamodule, "name", "") or "object")

    def collect_reference_images(self, dataloader: DataLoader) -> torch.Tensor:
        """Collect ``k_shot`` reference images, normalised like test images when ``normalize_reference_images``.

        Args:
            dataloader: dataloader to take the reference images from.

        Returns:
            The reference images ``(K, C, H, W)``.
        """
        images = super().collect_reference_images(dataloader)
        if not self.normalize_reference_images or self.pre_processor is None:
            return images
        normalize = [t for t in _flatten_transforms(self.pre_processor.transform) if isinstance(t, Normalize)]
        for transform in normalize:
            images = transform(images)
        return images


_HPARAMS = (
    "backbone",
    "pretrained",
    "class_name",
    "k_shot",
    "scales",
    "few_shot_source",
    "independent_windows",
    "normalize_reference_images",
)


def _flatten_transforms(transform: nn.Module | None) -> list[nn.Module]:
    if transform is None:
        return []
    if isinstance(transform, Compose):
        return [t for inner in transform.transforms for t in _flatten_transforms(inner)]
    return [transform]

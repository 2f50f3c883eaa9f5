"""Build open_clip models from a name plus a pretrained tag, a local checkpoint file, or random weights."""

from __future__ import annotations

import json
import logging
import os
import socket
import warnings
from pathlib import Path
from urllib.parse import urlparse

import open_clip
import torch

logger = logging.getLogger(__name__)

BUNDLED_CONFIGS = Path(__file__).parent / "model_configs"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
_REACHABILITY_TIMEOUT_S = 2.0


class BackboneWeightsUnavailable(RuntimeError):
    """The requested pretrained weights are neither on disk nor downloadable from here."""


def register_bundled_configs() -> None:
    """Make the bundled architectures (``fmc-tiny``, ``fmc-small``) known to open_clip. Idempotent."""
    if "fmc-tiny" not in open_clip.list_models():
        open_clip.add_model_config(BUNDLED_CONFIGS)


def load_clip(backbone: str, pretrained: str | os.PathLike | None, cache_dir: str | None = None) -> torch.nn.Module:
    """Build an open_clip CLIP model in eval mode.

    Args:
        backbone: open_clip architecture name (``ViT-L-14``, ``ViT-B-16``, the bundled ``fmc-tiny`` ...).
        pretrained: an open_clip pretrained tag of that architecture (``openai``), a path to a local checkpoint
            (open_clip state dict as ``.pt``/``.bin``/``.safetensors``, e.g. a ROCOCLIP checkpoint), or ``None``
            for random weights (scores are then meaningless; a warning says so).
        cache_dir: where open_clip caches downloaded weights (its default when ``None``).

    Returns:
        The model, in eval mode, on the CPU.

    Raises:
        ValueError: unknown architecture or tag.
        FileNotFoundError: ``pretrained`` looks like a path but no file is there.
        BackboneWeightsUnavailable: the tag's weights are not cached and their host cannot be reached.

    Example:
        >>> model = load_clip("fmc-tiny", pretrained=None)
    """
    register_bundled_configs()
    if backbone not in open_clip.list_models():
        raise ValueError(
            f"Unknown open_clip architecture {backbone!r}. Known: bundled fmc-tiny, fmc-small, and "
            f"{len(open_clip.list_models())} open_clip models such as ViT-B-16, ViT-L-14 (open_clip.list_models())."
        )
    if pretrained is None or str(pretrained).lower() in {"none", "random", ""}:
        warnings.warn(
            f"Backbone {backbone} built with RANDOM weights: anomaly scores are meaningless except for testing "
            "the pipeline. Pass pretrained=<open_clip tag> or a checkpoint path for real use.",
            stacklevel=2,
        )
        return open_clip.create_model(backbone, pretrained=None).eval()
    if _looks_like_path(pretrained):
        return _from_checkpoint(backbone, Path(pretrained))
    return _from_tag(backbone, str(pretrained), cache_dir)


def preprocess_stats(model: torch.nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The RGB normalisation (mean, std) the backbone was trained with."""
    cfg = getattr(model.visual, "preprocess_cfg", None) or {}
    return tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)), tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))


def _looks_like_path(pretrained: str | os.PathLike) -> bool:
    text = str(pretrained)
    return (
        isinstance(pretrained, os.PathLike)
        or os.sep in text
        or text.endswith(CHECKPOINT_SUFFIXES)
        or Path(text).exists()
    )


def _from_checkpoint(backbone: str, path: Path) -> torch.nn.Module:
    if not path.is_file():
        raise FileNotFoundError(
            f"Backbone checkpoint {path} does not exist. Pass the path of an open_clip state dict "
            f"({', '.join(CHECKPOINT_SUFFIXES)}) or an open_clip pretrained tag of {backbone}."
        )
    model = open_clip.create_model(backbone, pretrained=None, force_quick_gelu=_sidecar_says_quick_gelu(path))
    try:
        open_clip.load_checkpoint(model, str(path))
    except (RuntimeError, KeyError, AssertionError, ValueError) as error:
        raise ValueError(f"Checkpoint {path} does not fit architecture {backbone}: {error}") from error
    logger.info("Loaded %s weights from %s", backbone, path)
    return model.eval()


def _sidecar_says_quick_gelu(path: Path) -> bool:
    """A state dict does not record its MLP activation; a ROCOCLIP export's ``<stem>.json`` sidecar does (OpenAI
    weights use QuickGELU). Without a sidecar, the architecture name decides (e.g. ``ViT-L-14-quickgelu``)."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return False
    try:
        return bool(json.loads(sidecar.read_text(encoding="utf-8")).get("quick_gelu", False))
    except (json.JSONDecodeError, AttributeError):
        return False


def _from_tag(backbone: str, tag: str, cache_dir: str | None) -> torch.nn.Module:
    tags = open_clip.list_pretrained_tags_by_model(backbone)
    if tag not in tags:
        raise ValueError(
            f"{tag!r} is neither an open_clip pretrained tag of {backbone} nor an existing file. "
            f"Tags of {backbone}: {', '.join(tags) or 'none'}."
        )
    cfg = open_clip.get_pretrained_cfg(backbone, tag)
    local = _cached_weights(cfg, cache_dir)
    if local is None:
        host = _weights_host(cfg)
        if not _reachable(host):
            raise BackboneWeightsUnavailable(
                f"Weights for {backbone} tag {tag!r} are not cached on this machine and {host} cannot be reached. "
                f"Either download them on a connected machine (open_clip.create_model({backbone!r}, "
                f"pretrained={tag!r}) fills the Hugging Face cache, then copy ~/.cache/huggingface), or pass the "
                f"weights file itself: pretrained='/path/to/open_clip_pytorch_model.bin'."
            )
        return open_clip.create_model(
            backbone, pretrained=tag, cache_dir=cache_dir, force_quick_gelu=cfg.get("quick_gelu", False)
        ).eval()
    model = open_clip.create_model(backbone, pretrained=None, force_quick_gelu=cfg.get("quick_gelu", False))
    open_clip.load_checkpoint(model, str(local))
    return model.eval()


def _cached_weights(cfg: dict, cache_dir: str | None) -> Path | None:
    """The weights file of a tag if it is already on disk (Hugging Face cache or open_clip's URL cache)."""
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        model_id, filename = os.path.split(cfg["hf_hub"])
        for name in [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]:
            found = try_to_load_from_cache(model_id, name, cache_dir=cache_dir)
            if isinstance(found, str):
                return Path(found)
    if cfg.get("url"):
        candidate = Path(cache_dir or Path.home() / ".cache" / "clip") / os.path.basename(urlparse(cfg["url"]).path)
        if candidate.is_file():
            return candidate
    return None


def _weights_host(cfg: dict) -> str:
    return "huggingface.co" if cfg.get("hf_hub") else (urlparse(cfg.get("url", "")).hostname or "the weights host")


def _reachable(host: str) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}:
        return False
    try:
        socket.create_connection((host, 443), timeout=_REACHABILITY_TIMEOUT_S).close()
    except OSError:
        return False
    return True

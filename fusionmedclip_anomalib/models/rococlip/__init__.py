"""Stage 1 of FusionMedCLIP: ROCOCLIP, contrastive fine-tuning of the CLIP vision tower on radiology captions.

Names are imported lazily so ``fusionmedclip pretrain --help`` (which imports this package) starts fast.

Example:
    >>> from fusionmedclip_anomalib.models.rococlip import ROCOCLIP
    >>> model = ROCOCLIP(backbone="fmc-tiny", pretrained=None)
"""

from importlib import import_module

_LAZY = {
    "ROCOCLIP": "fusionmedclip_anomalib.models.rococlip.lightning_model",
    "export_open_clip_checkpoint": "fusionmedclip_anomalib.models.rococlip.export",
    "default_precision": "fusionmedclip_anomalib.models.rococlip.precision",
    "retrieval_recall": "fusionmedclip_anomalib.models.rococlip.retrieval",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""FusionMedCLIP few-shot medical anomaly detection for anomalib.

Heavy modules (torch, anomalib, open_clip) are imported lazily, so ``import fusionmedclip_anomalib``
and the ``fusionmedclip`` command start fast.

Example:
    >>> from fusionmedclip_anomalib import FusionMedCLIP
    >>> model = FusionMedCLIP(backbone="fmc-tiny", pretrained=None, feature_layers=(2, 4, 6))
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "FusionMedCLIP": "fusionmedclip_anomalib.models.fusionmedclip.lightning_model",
    "FusionMedCLIPModel": "fusionmedclip_anomalib.models.fusionmedclip.torch_model",
}

__all__ = ["FusionMedCLIP", "FusionMedCLIPModel", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Anomaly synthesis (SPEC §3): training pairs (image, mask) made from normal images; numpy/OpenCV only.

Names are imported lazily so that ``fusionmedclip synth --help`` (whose module lives in this package) starts
without loading numpy or OpenCV.

Example:
    >>> import numpy as np
    >>> from fusionmedclip_anomalib.synthesis import SynthesisPool
    >>> pool = SynthesisPool(weights="fusionmedclip")
    >>> image = np.random.default_rng(0).integers(30, 220, (64, 64), dtype=np.uint8)
    >>> out, mask = pool(image, np.random.default_rng(0))
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

_PACKAGE = "fusionmedclip_anomalib.synthesis"
_LAZY = {
    "Displacement": "deformation",
    "jacobian_determinant": "deformation",
    "estimate_foreground": "foreground",
    "foreground_depth": "foreground",
    "to_grey": "greyscale",
    "MaskSampler": "masks",
    "Region": "masks",
    "KNOWN_TASKS": "pool",
    "PRESETS": "pool",
    "SUPPORT_TASKS": "pool",
    "TASK_CLASSES": "pool",
    "SynthesisPool": "pool",
    "SynthesisResult": "pool",
    "resolve_weights": "pool",
    "SupportSet": "support",
    "CutPaste": "tasks",
    "DeformationTask": "tasks",
    "EnhancedDensity": "tasks",
    "EnhancedStructural": "tasks",
    "GaussIntensityChange": "tasks",
    "GuidedDeformation": "tasks",
    "Identity": "tasks",
    "SourceDeformation": "tasks",
    "SynthesisTask": "tasks",
}

__all__ = [
    "KNOWN_TASKS",
    "PRESETS",
    "SUPPORT_TASKS",
    "TASK_CLASSES",
    "CutPaste",
    "DeformationTask",
    "Displacement",
    "EnhancedDensity",
    "EnhancedStructural",
    "GaussIntensityChange",
    "GuidedDeformation",
    "Identity",
    "MaskSampler",
    "Region",
    "SourceDeformation",
    "SupportSet",
    "SynthesisPool",
    "SynthesisResult",
    "SynthesisTask",
    "estimate_foreground",
    "foreground_depth",
    "jacobian_determinant",
    "resolve_weights",
    "to_grey",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f"{_PACKAGE}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from fusionmedclip_anomalib.synthesis.deformation import Displacement, jacobian_determinant
    from fusionmedclip_anomalib.synthesis.foreground import estimate_foreground, foreground_depth
    from fusionmedclip_anomalib.synthesis.greyscale import to_grey
    from fusionmedclip_anomalib.synthesis.masks import MaskSampler, Region
    from fusionmedclip_anomalib.synthesis.pool import (
        KNOWN_TASKS,
        PRESETS,
        SUPPORT_TASKS,
        TASK_CLASSES,
        SynthesisPool,
        SynthesisResult,
        resolve_weights,
    )
    from fusionmedclip_anomalib.synthesis.support import SupportSet
    from fusionmedclip_anomalib.synthesis.tasks import (
        CutPaste,
        DeformationTask,
        EnhancedDensity,
        EnhancedStructural,
        GaussIntensityChange,
        GuidedDeformation,
        Identity,
        SourceDeformation,
        SynthesisTask,
    )

"""The synthesis tasks of SPEC §3, one small class each, all ``task(image, rng) -> (image, mask)``."""

from fusionmedclip_anomalib.synthesis.tasks.base import REFERENCE_SIDE, SynthesisTask
from fusionmedclip_anomalib.synthesis.tasks.deformation import DeformationTask, GuidedDeformation, SourceDeformation
from fusionmedclip_anomalib.synthesis.tasks.identity import Identity
from fusionmedclip_anomalib.synthesis.tasks.intensity import EnhancedDensity, GaussIntensityChange
from fusionmedclip_anomalib.synthesis.tasks.structural import CutPaste, EnhancedStructural

__all__ = [
    "REFERENCE_SIDE",
    "CutPaste",
    "DeformationTask",
    "EnhancedDensity",
    "EnhancedStructural",
    "GaussIntensityChange",
    "GuidedDeformation",
    "Identity",
    "SourceDeformation",
    "SynthesisTask",
]

"""open_clip backbones: names, pretrained tags, local checkpoints, bundled tiny configs, block features.

This is the only package that talks to open_clip's factory and to disk or network for weights.
"""

from fusionmedclip_anomalib.clip.features import patch_token_maps, run_vision_blocks
from fusionmedclip_anomalib.clip.loading import (
    BackboneWeightsUnavailable,
    load_clip,
    preprocess_stats,
    register_bundled_configs,
)

__all__ = [
    "BackboneWeightsUnavailable",
    "load_clip",
    "patch_token_maps",
    "preprocess_stats",
    "register_bundled_configs",
    "run_vision_blocks",
]

"""The bare tower really is FusionMedCLIP's backbone: same weights, same features before any training."""

import torch

from fusionmedclip_anomalib.clip import run_vision_blocks
from fusionmedclip_anomalib.perf.subjects import FusionMedCLIPSubjects, bare_features, default_feature_layers


def test_bare_tower_has_fusionmedclips_weights_and_features():
    subjects = FusionMedCLIPSubjects.build("fmc-tiny", (2, 4, 6), "cpu", "fp32")
    visual = subjects.merged.clip.visual
    torch.testing.assert_close(subjects.bare.conv1.weight, visual.conv1.weight, rtol=0, atol=0)
    # a fresh model's LoRA B and Block Adapter up-projections are zero: its block outputs are the bare tower's
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        ours = run_vision_blocks(visual, images, (2, 4, 6), subjects.merged._adapt_block)
        bare = bare_features(subjects.bare, images, (2, 4, 6))
    for layer, features in zip((2, 4, 6), bare, strict=True):
        torch.testing.assert_close(ours[layer], features, rtol=0, atol=1e-5)
    lora = [name for name, p in subjects.bare_lora.named_parameters() if p.requires_grad]
    assert lora and all("lora_" in name for name in lora)


def test_default_feature_layers_keep_the_papers_relative_depths():
    assert default_feature_layers("ViT-L-14") == (14, 18, 24)
    assert default_feature_layers("fmc-tiny") == (2, 4, 6)
    assert default_feature_layers("ViT-B-32") == (7, 9, 12)  # 12 blocks, not in the table: computed

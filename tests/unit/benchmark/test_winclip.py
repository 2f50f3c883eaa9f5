"""WinCLIP with a configurable backbone: identical to anomalib's at its backbone, correct windows on open_clip 3."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from anomalib.models.image.winclip import torch_model as anomalib_torch_model
from anomalib.models.image.winclip.lightning_model import WinClip as AnomalibWinClip
from open_clip.tokenizer import tokenize
from torchvision.transforms.v2 import Normalize, Resize

from fusionmedclip_anomalib.models.winclip import ConfigurableWinClipModel, WinClip


@pytest.mark.slow
def test_default_backbone_is_identical_to_anomalib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random weights, same seed, both classes: same weights, transform, embeddings and outputs."""
    monkeypatch.setattr(anomalib_torch_model, "PRETRAINED", None)  # anomalib's only offline switch
    torch.manual_seed(0)
    theirs = AnomalibWinClip(post_processor=False, evaluator=False, visualizer=False)
    torch.manual_seed(0)
    ours = WinClip(pretrained=None, independent_windows=False, post_processor=False, evaluator=False, visualizer=False)
    assert ours.model.backbone == theirs.model.backbone == "ViT-B-16-plus-240"
    their_state, our_state = theirs.state_dict(), ours.state_dict()
    assert their_state.keys() == our_state.keys()
    assert all(torch.equal(their_state[key], our_state[key]) for key in their_state)
    their_steps, our_steps = theirs.pre_processor.transform.transforms, ours.pre_processor.transform.transforms
    assert [type(t) for t in their_steps] == [type(t) for t in our_steps] == [Resize, Normalize]
    assert (their_steps[0].size, their_steps[0].interpolation) == (our_steps[0].size, our_steps[0].interpolation)
    assert list(their_steps[1].mean) == pytest.approx(list(our_steps[1].mean), abs=1e-7)
    assert list(their_steps[1].std) == pytest.approx(list(our_steps[1].std), abs=1e-7)

    generator = torch.Generator().manual_seed(1)
    images = torch.rand(1, 3, 240, 240, generator=generator)
    theirs.eval(), ours.eval()  # anomalib's CLIP leaves open_clip in train mode (slower attention path, ~1e-6 apart)
    with torch.no_grad():
        prompts = tokenize(["a photo of a flawless brain.", "a photo of a damaged brain."])
        torch.testing.assert_close(
            ours.model.clip.encode_text(prompts), theirs.model.clip.encode_text(prompts), rtol=0, atol=0
        )
    # the full prompt ensemble (~700 prompts) takes a minute on a CPU; its code is inherited, so use one embedding
    text_embeddings = torch.randn(2, ours.model.clip.text_projection.shape[1], generator=generator)
    # zero-shot forward: the few-shot branch encodes reference images with the same encode_image
    for model in (theirs, ours):
        model.model._text_embeddings = text_embeddings.clone()
    their_out, our_out = theirs.model(images), ours.model(images)
    torch.testing.assert_close(our_out.pred_score, their_out.pred_score, rtol=0, atol=0)
    torch.testing.assert_close(our_out.anomaly_map, their_out.anomaly_map, rtol=0, atol=0)


@pytest.fixture(scope="module")
def tiny() -> ConfigurableWinClipModel:
    torch.manual_seed(0)
    return ConfigurableWinClipModel("fmc-tiny", pretrained=None, class_name="brain").eval()


def _one_window_alone(
    model: ConfigurableWinClipModel, feature_map: torch.Tensor, patches: torch.Tensor
) -> torch.Tensor:
    """Encode a single window as its own sequence: class token + its patches, through the rest of the tower."""
    visual = model.clip.visual
    tokens = feature_map[:, torch.cat((torch.zeros(1, dtype=patches.dtype), patches + 1))]
    tokens = visual.ln_post(visual.transformer(visual.ln_pre(tokens)))
    pooled, _ = visual._global_pool(tokens)
    return pooled @ visual.proj


def test_windows_are_encoded_independently(tiny: ConfigurableWinClipModel) -> None:
    generator = torch.Generator().manual_seed(3)
    feature_map = torch.randn(2, 1 + 14 * 14, 128, generator=generator)
    masks = tiny.masks[0]
    with torch.no_grad():
        windows = tiny._get_window_embeddings(feature_map, masks)
        assert windows.shape == (2, masks.shape[1], tiny.clip.visual.proj.shape[1])
        for image in range(2):
            for window in (0, 7, masks.shape[1] - 1):
                alone = _one_window_alone(tiny, feature_map[image : image + 1], masks[:, window])
                torch.testing.assert_close(windows[image, window], alone[0], rtol=1e-4, atol=1e-5)
        tiny.independent_windows = False
        try:
            anomalib_windows = tiny._get_window_embeddings(feature_map, masks)
        finally:
            tiny.independent_windows = True
    assert not torch.allclose(anomalib_windows, windows, atol=1e-3), "anomalib 2.7 on open_clip 3 mixes windows"


def test_scores_do_not_depend_on_the_rest_of_the_batch(tiny: ConfigurableWinClipModel) -> None:
    generator = torch.Generator().manual_seed(4)
    tiny.setup("brain", torch.rand(2, 3, 224, 224, generator=generator))
    images = torch.rand(3, 3, 224, 224, generator=generator)
    batch, alone = tiny(images), tiny(images[1:2])
    torch.testing.assert_close(batch.anomaly_map[1:2], alone.anomaly_map, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batch.pred_score[1:2], alone.pred_score, rtol=1e-4, atol=1e-5)


def test_tiny_backbone_gets_its_own_input_size() -> None:
    model = WinClip(
        backbone="fmc-tiny", pretrained=None, k_shot=4, post_processor=False, evaluator=False, visualizer=False
    )
    resize = model.pre_processor.transform.transforms[0]
    assert list(resize.size) == [224, 224]
    assert model.model.grid_size == (14, 14)
    assert model.learning_type.value == "few_shot"
    assert model.hparams["backbone"] == "fmc-tiny" and model.hparams["pretrained"] is None


def test_empty_datamodule_category_falls_back_to_its_name() -> None:
    model = WinClip(backbone="fmc-tiny", pretrained=None, post_processor=False, evaluator=False, visualizer=False)
    datamodule = SimpleNamespace(category="", name="phantom_brain")
    model._trainer = SimpleNamespace(datamodule=datamodule)
    assert model._get_class_name() == "phantom_brain"
    datamodule.category = "brain"
    assert model._get_class_name() == "brain"


def test_reference_images_can_be_normalised_like_test_images() -> None:
    model = WinClip(
        backbone="fmc-tiny",
        pretrained=None,
        k_shot=2,
        normalize_reference_images=True,
        post_processor=False,
        evaluator=False,
        visualizer=False,
    )
    images = torch.full((2, 3, 224, 224), 0.5)
    loader = [SimpleNamespace(image=images)]
    collected = model.collect_reference_images(loader)
    expected = (0.5 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711]
    )
    torch.testing.assert_close(collected[0, :, 0, 0], expected)
    model.normalize_reference_images = False
    assert torch.equal(model.collect_reference_images(loader), images)

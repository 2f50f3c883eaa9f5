"""Prompt construction: UMLS initialisation, token positions, manual prompts, custom knowledge files."""

import json

import open_clip
import pytest
import torch

from fusionmedclip_anomalib.knowledge import load_knowledge
from fusionmedclip_anomalib.models.fusionmedclip.prompts import CoOpPrompts, ManualPrompts, build_prompts


@pytest.fixture(scope="module")
def tokenizer():
    return open_clip.get_tokenizer("fmc-tiny")


def test_umls_contexts_equal_token_embeddings_of_knowledge_phrases(tiny_clip, tokenizer):
    knowledge = load_knowledge()
    prompts = CoOpPrompts(tiny_clip, tokenizer, knowledge, n_ctx=8, csc=True, knowledge_init=("synonyms", 0))
    assert prompts.knowledge_phrases == ("within normal limits", "pathological")
    for class_index, phrase in enumerate(prompts.knowledge_phrases):
        ids = tokenizer([phrase])[0]
        n_tokens = int((ids != 0).sum()) - 2
        expected = tiny_clip.token_embedding.weight[ids[1 : 1 + n_tokens]]
        torch.testing.assert_close(prompts.contexts[class_index, 8 - n_tokens :].detach(), expected)
        rest = prompts.contexts[class_index, : 8 - n_tokens].detach()
        assert 0.005 < rest.std() < 0.05  # N(0, 0.02)


def test_definition_longer_than_context_fills_all_contexts(tiny_clip, tokenizer):
    prompts = CoOpPrompts(tiny_clip, tokenizer, load_knowledge(), n_ctx=4, knowledge_init=("definitions", 0))
    ids = tokenizer([prompts.knowledge_phrases[0]])[0]
    torch.testing.assert_close(prompts.contexts[0].detach(), tiny_clip.token_embedding.weight[ids[1:5]])


def test_contexts_sit_where_the_position_says(tiny_clip, tokenizer):
    knowledge = load_knowledge()
    phrase_ids = tokenizer([knowledge.normal.class_phrases[0] + "."])[0]  # "normal."
    phrase_embedding = tiny_clip.token_embedding.weight[phrase_ids[1]]
    for position, phrase_slot in (("end", 1 + 4), ("front", 1), ("middle", 1 + 2)):
        prompts = CoOpPrompts(tiny_clip, tokenizer, knowledge, n_ctx=4, csc=False, position=position)
        embeddings = prompts.prompt_embeddings(0)[0]
        torch.testing.assert_close(embeddings[phrase_slot], phrase_embedding)
        context_slots = {"end": [1, 2, 3, 4], "front": [2, 3, 4, 5], "middle": [1, 2, 4, 5]}[position]
        torch.testing.assert_close(embeddings[context_slots], prompts.contexts[0])


def test_class_specific_contexts_differ_per_class(tiny_clip, tokenizer):
    prompts = CoOpPrompts(tiny_clip, tokenizer, load_knowledge(), n_ctx=8, csc=True)
    assert prompts.contexts.shape[0] == 2
    shared = CoOpPrompts(tiny_clip, tokenizer, load_knowledge(), n_ctx=8, csc=False)
    assert shared.contexts.shape[0] == 1
    with pytest.raises(ValueError, match="csc=True"):
        CoOpPrompts(tiny_clip, tokenizer, load_knowledge(), csc=False, knowledge_init=("synonyms", 0))


def test_prompt_embeddings_are_unit_vectors_and_manual_prompts_do_not_train(tiny_clip, tokenizer):
    manual = ManualPrompts(tiny_clip, tokenizer, load_knowledge())
    assert not list(manual.parameters())
    embeddings = manual(tiny_clip)
    assert embeddings.shape == (2, 128)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2))


def test_manual_prompt_equals_average_of_encoded_phrases(tiny_clip, tokenizer):
    knowledge = load_knowledge()
    manual = ManualPrompts(tiny_clip, tokenizer, knowledge, template="a photo of a {}.")
    with torch.no_grad():
        direct = tiny_clip.encode_text(tokenizer([f"a photo of a {p}." for p in knowledge.abnormal.class_phrases]))
    direct = torch.nn.functional.normalize(torch.nn.functional.normalize(direct, dim=-1).mean(0), dim=-1)
    torch.testing.assert_close(manual(tiny_clip)[1], direct, atol=1e-5, rtol=1e-5)


def test_user_knowledge_file(tiny_clip, tmp_path):
    own = {
        "concepts": {
            "normal": {"synonyms": ["sano"], "definitions": ["sin enfermedad"], "class_phrases": ["normal", "sano"]},
            "abnormal": {"synonyms": ["patologico"], "definitions": ["con enfermedad"], "class_phrases": ["tumor"]},
        }
    }
    path = tmp_path / "knowledge.json"
    path.write_text(json.dumps(own))
    knowledge = load_knowledge(path)
    prompts = build_prompts("coop_umls", tiny_clip, "fmc-tiny", knowledge, 8, True, "end", ("synonyms", 0), "")
    assert prompts.knowledge_phrases == ("sano", "patologico")
    (tmp_path / "bad.json").write_text(json.dumps({"concepts": {"normal": {}}}))
    with pytest.raises(ValueError, match="bad.json"):
        load_knowledge(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_knowledge(tmp_path / "missing.json")

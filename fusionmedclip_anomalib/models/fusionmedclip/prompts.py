"""Text prompts for the 'normal' and 'abnormal' classes: CoOp learnable contexts (optionally UMLS-initialised) or
fixed manual prompts. Both produce one L2-normalised text embedding per class."""

from __future__ import annotations

from typing import Literal

import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import text_global_pool
from torch import nn

from fusionmedclip_anomalib.knowledge import CLASSES, Knowledge

PromptMode = Literal["coop_umls", "coop", "manual"]
TokenPosition = Literal["end", "middle", "front"]
CONTEXT_INIT_STD = 0.02


def encode_text_embeddings(clip: nn.Module, embeddings: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """Run the frozen text tower on token *embeddings* (not ids) and return the pooled, projected features.

    ``token_ids`` only locate the end-of-text token for pooling; the embeddings may differ from ``token_ids``'s.
    Under a causal mask with end-of-text pooling, the padding after the last end-of-text token cannot change the
    result, so it is cut off: prompts of ~20 tokens then cost ~20 positions instead of the context length (77).
    """
    length = pooled_prefix_length(clip, token_ids)
    embeddings, token_ids = embeddings[:, :length], token_ids[:, :length]
    attn_mask = clip.attn_mask[:length, :length] if clip.attn_mask is not None else None
    x = embeddings + clip.positional_embedding[:length].to(embeddings.dtype)
    x = clip.transformer(x, attn_mask=attn_mask)
    x = clip.ln_final(x)
    x = text_global_pool(x, token_ids, clip.text_pool_type, eos_token_id=getattr(clip, "text_eos_id", None))
    projection = clip.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, nn.Linear) else x @ projection


def pooled_prefix_length(clip: nn.Module, token_ids: torch.Tensor) -> int:
    """How many leading positions of ``token_ids`` the pooled text feature can depend on.

    With open_clip's ``argmax`` pooling (the end-of-text token has the highest id) and a causal attention mask, the
    feature is read at the end-of-text token and no position attends to later ones, so everything after the last
    end-of-text token of the batch is dead weight. Any other pooling or mask keeps the full length.
    """
    full = token_ids.shape[1]
    mask = clip.attn_mask
    if clip.text_pool_type != "argmax" or mask is None or not _is_causal(mask):
        return full
    return min(full, int(token_ids.argmax(dim=-1).max()) + 1)


def _is_causal(mask: torch.Tensor) -> bool:
    """``True`` for an additive mask that blocks exactly the positions after each query (``-inf`` above the
    diagonal, 0 elsewhere)."""
    above = torch.ones_like(mask, dtype=torch.bool).triu(diagonal=1)
    return bool(torch.isneginf(mask[above]).all() and (mask[~above] == 0).all())


def _text_token_count(tokenizer, text: str) -> int:
    """Number of BPE tokens of ``text`` without start/end tokens."""
    ids = tokenizer([text])[0]
    return int((ids != 0).sum()) - 2


class ManualPrompts(nn.Module):
    """Fixed prompts ``template.format(phrase)`` for every class phrase; nothing trainable.

    Example:
        >>> prompts = ManualPrompts(clip, tokenizer, knowledge, template="a photo of a {}.")
        >>> prompts(clip).shape  # (2, embed_dim): normal, abnormal
    """

    def __init__(self, clip: nn.Module, tokenizer, knowledge: Knowledge, template: str = "a photo of a {}.") -> None:
        super().__init__()
        for index, name in enumerate(CLASSES):
            phrases = knowledge.concept(name).class_phrases
            self.register_buffer(f"tokens_{index}", tokenizer([template.format(p) for p in phrases]), persistent=False)

    def forward(self, clip: nn.Module) -> torch.Tensor:
        features = []
        for index in range(len(CLASSES)):
            tokens = getattr(self, f"tokens_{index}")
            embeddings = clip.token_embedding(tokens)
            features.append(_class_embedding(encode_text_embeddings(clip, embeddings, tokens)))
        return torch.stack(features)


class CoOpPrompts(nn.Module):
    """CoOp learnable context vectors ``[v1..vM]`` around each class phrase, with class-specific or shared contexts.

    Each class has an ensemble of class phrases (from the knowledge file); every phrase gets the same contexts of its
    class, the text features of the phrases are L2-normalised, averaged and normalised again.

    With ``knowledge_init`` a phrase from the knowledge file (e.g. the first UMLS synonym of the concept) is
    tokenised and its token embeddings initialise the *last* context vectors of that class (the ones next to the
    class phrase); the remaining contexts are drawn from N(0, 0.02).

    Example:
        >>> prompts = CoOpPrompts(clip, tokenizer, knowledge, n_ctx=8, csc=True, position="end",
        ...                       knowledge_init=("synonyms", 0))
        >>> prompts(clip).shape  # (2, embed_dim)
    """

    def __init__(
        self,
        clip: nn.Module,
        tokenizer,
        knowledge: Knowledge,
        n_ctx: int = 8,
        csc: bool = True,
        position: TokenPosition = "end",
        knowledge_init: tuple[str, int] | None = None,
    ) -> None:
        super().__init__()
        if position not in ("end", "middle", "front"):
            raise ValueError(f"class token position must be 'end', 'middle' or 'front', got {position!r}")
        if knowledge_init is not None and not csc:
            raise ValueError("UMLS initialisation is per class: it needs class-specific contexts (csc=True).")
        self.n_ctx, self.csc, self.position = n_ctx, csc, position
        width = clip.token_embedding.weight.shape[1]
        contexts = torch.randn(len(CLASSES) if csc else 1, n_ctx, width) * CONTEXT_INIT_STD
        self.knowledge_phrases: tuple[str, ...] = ()
        if knowledge_init is not None:
            field_name, index = knowledge_init
            self.knowledge_phrases = tuple(getattr(knowledge.concept(c), field_name)[index] for c in CLASSES)
            for class_index, phrase in enumerate(self.knowledge_phrases):
                token_vectors = self.phrase_token_embeddings(clip, tokenizer, phrase)[:n_ctx]
                contexts[class_index, n_ctx - len(token_vectors) :] = token_vectors
        self.contexts = nn.Parameter(contexts)

        placeholder = " ".join(["X"] * n_ctx)
        for class_index, name in enumerate(CLASSES):
            phrases = knowledge.concept(name).class_phrases
            tokens = tokenizer([f"{placeholder} {phrase}." for phrase in phrases])
            with torch.no_grad():
                embeddings = clip.token_embedding(tokens)
            # frozen pieces around the contexts: start token, and class phrase + '.' + end token + padding
            self.register_buffer(f"tokens_{class_index}", tokens, persistent=False)
            self.register_buffer(f"prefix_{class_index}", embeddings[:, :1].clone(), persistent=False)
            self.register_buffer(f"suffix_{class_index}", embeddings[:, 1 + n_ctx :].clone(), persistent=False)
            self.register_buffer(
                f"phrase_len_{class_index}",
                torch.tensor([_text_token_count(tokenizer, p) for p in phrases]),
                persistent=False,
            )

    @staticmethod
    def phrase_token_embeddings(clip: nn.Module, tokenizer, phrase: str) -> torch.Tensor:
        """Token embeddings ``(n_tokens, width)`` of ``phrase`` without start/end tokens."""
        ids = tokenizer([phrase])[0]
        with torch.no_grad():
            return clip.token_embedding(ids[1 : 1 + _text_token_count(tokenizer, phrase)]).clone()

    def class_contexts(self, class_index: int) -> torch.Tensor:
        """The ``(n_ctx, width)`` context vectors used for class ``class_index``."""
        return self.contexts[class_index if self.csc else 0]

    def prompt_embeddings(self, class_index: int) -> torch.Tensor:
        """Token embeddings of every prompt of one class, contexts placed at the configured position."""
        prefix = getattr(self, f"prefix_{class_index}")
        suffix = getattr(self, f"suffix_{class_index}")
        n_prompts = prefix.shape[0]
        contexts = self.class_contexts(class_index).unsqueeze(0).expand(n_prompts, -1, -1)
        if self.position == "end":
            return torch.cat([prefix, contexts, suffix], dim=1)
        rows = []
        half = self.n_ctx // 2
        for row, length in enumerate(getattr(self, f"phrase_len_{class_index}").tolist()):
            phrase, rest = suffix[row : row + 1, :length], suffix[row : row + 1, length:]
            ctx = contexts[row : row + 1]
            if self.position == "front":
                pieces = [prefix[row : row + 1], phrase, ctx, rest]
            else:
                pieces = [prefix[row : row + 1], ctx[:, :half], phrase, ctx[:, half:], rest]
            rows.append(torch.cat(pieces, dim=1))
        return torch.cat(rows, dim=0)

    def forward(self, clip: nn.Module) -> torch.Tensor:
        features = []
        for class_index in range(len(CLASSES)):
            embeddings = self.prompt_embeddings(class_index)
            tokens = getattr(self, f"tokens_{class_index}")
            features.append(_class_embedding(encode_text_embeddings(clip, embeddings, tokens)))
        return torch.stack(features)


def _class_embedding(phrase_features: torch.Tensor) -> torch.Tensor:
    return F.normalize(F.normalize(phrase_features, dim=-1).mean(dim=0), dim=-1)


def build_prompts(
    mode: PromptMode,
    clip: nn.Module,
    backbone: str,
    knowledge: Knowledge,
    n_ctx: int,
    csc: bool,
    position: TokenPosition,
    knowledge_init: tuple[str, int],
    manual_template: str,
) -> nn.Module:
    """The prompt module for a prompt mode of SPEC §2 (``manual``, ``coop``, ``coop_umls``)."""
    tokenizer = open_clip.get_tokenizer(backbone)
    if mode == "manual":
        return ManualPrompts(clip, tokenizer, knowledge, manual_template)
    if mode in ("coop", "coop_umls"):
        init = knowledge_init if mode == "coop_umls" else None
        return CoOpPrompts(clip, tokenizer, knowledge, n_ctx, csc, position, init)
    raise ValueError(f"prompt must be 'coop_umls', 'coop' or 'manual', got {mode!r}")

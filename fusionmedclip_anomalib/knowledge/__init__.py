"""Medical knowledge (UMLS concepts) for prompt construction and context initialisation.

The bundled file holds the 'normal' (C0231218) and 'abnormal' (C0000768) concepts. A user's own file has the
same JSON shape: ``{"concepts": {"normal": {...}, "abnormal": {...}}}`` where each concept lists ``synonyms``,
``definitions`` and ``class_phrases`` (the CLASS tokens of the prompts), e.g. modality-specific terms or another
language.

Example:
    >>> knowledge = load_knowledge()
    >>> knowledge.normal.cui
    'C0231218'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED_KNOWLEDGE = Path(__file__).with_name("umls.json")
CLASSES = ("normal", "abnormal")


@dataclass(frozen=True)
class Concept:
    """One concept: its identifier, phrases that name it, and the class phrases used as prompt CLASS tokens."""

    cui: str
    synonyms: tuple[str, ...]
    definitions: tuple[str, ...]
    class_phrases: tuple[str, ...]
    semantic_types: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Knowledge:
    """The two concepts the anomaly prompts are built from."""

    normal: Concept
    abnormal: Concept

    def concept(self, name: str) -> Concept:
        """The concept of class ``name`` (``normal`` or ``abnormal``)."""
        return getattr(self, name)


def load_knowledge(path: str | Path | None = None) -> Knowledge:
    """Read a knowledge file (the bundled UMLS file when ``path`` is None)."""
    path = Path(path) if path is not None else BUNDLED_KNOWLEDGE
    if not path.is_file():
        raise FileNotFoundError(f"Knowledge file {path} does not exist (expected JSON with concepts normal/abnormal).")
    try:
        concepts = json.loads(path.read_text(encoding="utf-8"))["concepts"]
        return Knowledge(**{name: _concept(concepts[name], name) for name in CLASSES})
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"Knowledge file {path} is not valid: {error!r}. It needs concepts 'normal' and 'abnormal', each with "
            "non-empty 'synonyms', 'definitions' and 'class_phrases' lists."
        ) from error


def _concept(raw: dict, name: str) -> Concept:
    lists = {key: tuple(str(item) for item in raw[key]) for key in ("synonyms", "definitions", "class_phrases")}
    empty = [key for key, items in lists.items() if not items]
    if empty:
        raise KeyError(f"concept {name!r} has empty {empty}")
    return Concept(cui=str(raw.get("cui", "")), semantic_types=tuple(raw.get("semantic_types", ())), **lists)

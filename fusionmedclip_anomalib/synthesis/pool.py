"""The weighted pool of synthesis tasks that makes each training pair."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from fusionmedclip_anomalib.synthesis.greyscale import to_grey
from fusionmedclip_anomalib.synthesis.support import SupportSet
from fusionmedclip_anomalib.synthesis.tasks import (
    CutPaste,
    EnhancedDensity,
    EnhancedStructural,
    GaussIntensityChange,
    GuidedDeformation,
    Identity,
    SourceDeformation,
    SynthesisTask,
)
from fusionmedclip_anomalib.synthesis.tasks.base import check_rng

#: Task name (as used in weights and YAML) -> class.
TASK_CLASSES: Mapping[str, type[SynthesisTask]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            Identity,
            CutPaste,
            EnhancedStructural,
            GaussIntensityChange,
            EnhancedDensity,
            SourceDeformation,
            GuidedDeformation,
        )
    }
)
KNOWN_TASKS: tuple[str, ...] = tuple(TASK_CLASSES)
#: Tasks that take their source patches from the support set.
SUPPORT_TASKS: frozenset[str] = frozenset({"cutpaste", "enhanced_structural"})

PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        # SPEC §3 default: equal over Identity, Enhanced structural, Enhanced density and Deformation,
        # the deformation quarter split evenly between its source and guided forms.
        "fusionmedclip": MappingProxyType(
            {
                "identity": 0.25,
                "enhanced_structural": 0.25,
                "enhanced_density": 0.25,
                "source_deformation": 0.125,
                "guided_deformation": 0.125,
            }
        ),
        "mediclip": MappingProxyType(
            {"cutpaste": 0.25, "gauss_intensity_change": 0.25, "source_deformation": 0.25, "identity": 0.25}
        ),
    }
)


def resolve_weights(weights: str | Mapping[str, float]) -> dict[str, float]:
    """Turn a preset name or a name -> probability mapping into a validated dict.

    Raises:
        ValueError: unknown preset or task name (the known ones are listed), a negative or non-finite weight,
            or weights that do not sum to 1 within 1e-6.
    """
    if isinstance(weights, str):
        if weights not in PRESETS:
            raise ValueError(f"unknown synthesis preset {weights!r}; known presets: {', '.join(PRESETS)}")
        return dict(PRESETS[weights])
    if not isinstance(weights, Mapping):
        # The pool's contract: every invalid weights value is a ValueError, whatever its type.
        raise ValueError(  # noqa: TRY004
            f"weights must be a preset name or a mapping of task name to probability, got {weights!r}"
        )
    if not weights:
        raise ValueError(f"weights are empty; give at least one of: {', '.join(KNOWN_TASKS)}")
    unknown = [name for name in weights if name not in TASK_CLASSES]
    if unknown:
        raise ValueError(
            f"unknown synthesis task(s) {', '.join(map(repr, unknown))}; known tasks: {', '.join(KNOWN_TASKS)}"
        )
    resolved: dict[str, float] = {}
    for name, value in weights.items():
        try:
            probability = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"weight of {name!r} must be a number, got {value!r}") from None
        if not math.isfinite(probability) or probability < 0:
            raise ValueError(f"weight of {name!r} must be a finite number >= 0, got {value!r}")
        resolved[name] = probability
    total = math.fsum(resolved.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"synthesis weights must sum to 1 (within 1e-6), got {total:.6g}: {resolved}")
    return resolved


@dataclass(frozen=True)
class SynthesisResult:
    """One synthesised pair and the task that made it."""

    image: np.ndarray
    mask: np.ndarray
    task: str


class SynthesisPool:
    """Draws one task per call with the configured probabilities and applies it.

    Args:
        weights: a preset name (``"fusionmedclip"``, ``"mediclip"``) or a mapping task name -> probability.
        support: other normal images (grey or colour uint8, any size) that CutPaste and Enhanced structural
            take patches from; empty means each image is its own source.
        task_options: optional constructor arguments per task name, e.g.
            ``{"cutpaste": {"size": (0.1, 0.4)}}``.

    Example:
        >>> import numpy as np
        >>> pool = SynthesisPool(weights="mediclip", support=[np.full((64, 64), 80, np.uint8)])
        >>> image = np.random.default_rng(1).integers(40, 200, (64, 64), dtype=np.uint8)
        >>> out, mask = pool(image, np.random.default_rng(0))
        >>> out.shape, out.dtype, mask.dtype
        ((64, 64), dtype('uint8'), dtype('float32'))
    """

    def __init__(
        self,
        weights: str | Mapping[str, float] = "fusionmedclip",
        support: Sequence[np.ndarray] = (),
        task_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._weights = resolve_weights(weights)
        options = dict(task_options or {})
        unknown = [name for name in options if name not in TASK_CLASSES]
        if unknown:
            raise ValueError(
                f"task_options for unknown task(s) {', '.join(map(repr, unknown))}; known tasks: {', '.join(KNOWN_TASKS)}"
            )
        self.support = SupportSet(support)
        self.tasks: dict[str, SynthesisTask] = {}
        for name, probability in self._weights.items():
            if probability > 0:
                kwargs = dict(options.get(name, {}))
                if name in SUPPORT_TASKS:
                    kwargs.setdefault("support", self.support)
                self.tasks[name] = TASK_CLASSES[name](**kwargs)
        self._names = list(self.tasks)
        cumulative = np.cumsum([self._weights[name] for name in self._names])
        self._cumulative = cumulative / cumulative[-1]

    @property
    def weights(self) -> dict[str, float]:
        """Task name -> probability (a copy)."""
        return dict(self._weights)

    def sample(
        self, image: np.ndarray, rng: np.random.Generator, foreground: np.ndarray | None = None
    ) -> SynthesisResult:
        """Draw a task and apply it; also says which task it was."""
        check_rng(rng)
        index = min(int(np.searchsorted(self._cumulative, rng.random(), side="right")), len(self._names) - 1)
        name = self._names[index]
        out, mask = self.tasks[name](to_grey(image), rng, foreground=foreground)
        return SynthesisResult(out, mask, name)

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator, foreground: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(image, mask)``: uint8 (H, W) and float32 (H, W) in [0, 1]."""
        result = self.sample(image, rng, foreground)
        return result.image, result.mask

    def __repr__(self) -> str:
        return f"SynthesisPool(weights={self._weights}, support={len(self.support)} images)"

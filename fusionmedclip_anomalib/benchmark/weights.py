"""The ``weights: pretrained | random`` option: which constructor argument switches a model's pretrained weights.

The harness knows models by their constructor, not by name:

- ``pre_trained: bool`` (timm-backed anomalib models: Patchcore, Padim, Dfkde, Dfm, Cflow, Fastflow, ...):
  ``random`` sets it to ``False``.
- ``pretrained: str | None`` (open_clip tag or checkpoint: FusionMedCLIP, this package's WinClip): ``random`` sets
  it to ``None``.

A model with neither cannot be made random by the harness; declare ``weights: none`` on it when it has no
pretrained weights at all (e.g. Draem), or ``weights: pretrained`` when it loads its own.
"""

from __future__ import annotations

import inspect
from typing import Any

_BOOL_SWITCH = "pre_trained"
_TAG_SWITCH = "pretrained"


class WeightsPolicyError(ValueError):
    """The ``weights`` option cannot be applied to a model as configured."""


def apply_weights_policy(model_cls: type, init_args: dict[str, Any], weights: str, name: str) -> dict[str, Any]:
    """Return the model's init_args with the weights option applied.

    Args:
        model_cls: the model class.
        init_args: constructor arguments from the config.
        weights: ``pretrained``, ``random`` or ``none``.
        name: model name for messages.

    Returns:
        A new init_args dict.

    Raises:
        WeightsPolicyError: the model has no known switch, or init_args contradict the option.

    Example:
        >>> from anomalib.models import Patchcore  # doctest: +SKIP
        >>> apply_weights_policy(Patchcore, {"backbone": "resnet18"}, "random", "PatchCore")  # doctest: +SKIP
        {'backbone': 'resnet18', 'pre_trained': False}
    """
    args = dict(init_args)
    if weights == "none":
        return args
    parameters = inspect.signature(model_cls).parameters
    if _BOOL_SWITCH in parameters:
        wanted = weights == "pretrained"
        if _BOOL_SWITCH in args and bool(args[_BOOL_SWITCH]) != wanted:
            raise WeightsPolicyError(
                f"{name}: init_args sets {_BOOL_SWITCH}={args[_BOOL_SWITCH]!r} but weights is {weights!r}; "
                "remove one of the two."
            )
        args[_BOOL_SWITCH] = wanted
        return args
    if _TAG_SWITCH in parameters:
        if weights == "random":
            if args.get(_TAG_SWITCH, "unset") not in {None, "unset"}:
                raise WeightsPolicyError(
                    f"{name}: init_args sets {_TAG_SWITCH}={args[_TAG_SWITCH]!r} but weights is 'random'; "
                    "remove one of the two."
                )
            args[_TAG_SWITCH] = None
        elif _TAG_SWITCH in args and args[_TAG_SWITCH] is None:
            raise WeightsPolicyError(f"{name}: weights is 'pretrained' but init_args sets {_TAG_SWITCH}=null.")
        return args
    if weights == "random":
        raise WeightsPolicyError(
            f"{name} ({model_cls.__module__}.{model_cls.__qualname__}) has neither a '{_BOOL_SWITCH}' nor a "
            f"'{_TAG_SWITCH}' argument, so the harness cannot give it random weights. Set 'weights: none' on it if "
            "it uses no pretrained weights, or 'weights: pretrained' if it loads its own."
        )
    return args

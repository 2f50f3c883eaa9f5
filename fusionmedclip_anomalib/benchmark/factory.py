"""Build the model and the datamodule of one run from their class paths, the way the protocol needs them.

- Datamodule: gets the run's ``k_shot`` and ``seed`` when its constructor takes them.
- Model: gets the weights option (:mod:`.weights`), the run's ``k_shot`` when its constructor takes one (WinCLIP's
  reference images) and the config does not set it (``k_shot: 0`` keeps WinCLIP zero-shot), the run's ``seed`` when
  it takes one (FusionMedCLIP's synthesis), and no post-processor, evaluator or visualizer - the harness scores raw
  outputs itself.
"""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Any

from fusionmedclip_anomalib.benchmark.config import ComponentSpec, RunSpec
from fusionmedclip_anomalib.benchmark.weights import apply_weights_policy

# anomalib components that would rescale, clamp, threshold or draw the outputs the harness scores
_DISABLED_COMPONENTS = ("post_processor", "evaluator", "visualizer")


class ProtocolError(RuntimeError):
    """A run cannot be evaluated honestly as configured (e.g. the validation set overlaps the test set)."""


def import_class(class_path: str) -> type:
    """Import ``package.module.Class``.

    Args:
        class_path: dotted path.

    Returns:
        The class.

    Raises:
        ImportError: the module or the class does not exist.
    """
    module_name, _, class_name = class_path.rpartition(".")
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as error:
        raise ImportError(f"Cannot import {class_path!r}: {error}") from error
    try:
        return getattr(module, class_name)
    except AttributeError as error:
        raise ImportError(f"Module {module_name!r} has no class {class_name!r}.") from error


def build_datamodule(spec: RunSpec) -> tuple[Any, bool]:
    """Instantiate the run's datamodule.

    Args:
        spec: the run.

    Returns:
        The datamodule, and whether it draws the k-shot support set itself (its constructor takes ``k_shot``).
        When it does not, :func:`~fusionmedclip_anomalib.benchmark.support.prepare_support_set` subsamples the
        training set.
    """
    cls = import_class(spec.dataset.class_path)
    parameters = inspect.signature(cls).parameters
    args = _grid_owned(spec.dataset, {"k_shot": spec.k_shot, "seed": spec.seed}, parameters)
    return cls(**args), "k_shot" in parameters


def build_model(spec: RunSpec) -> Any:
    """Instantiate the run's model with raw outputs.

    Args:
        spec: the run.

    Returns:
        The AnomalibModule, with ``post_processor``, ``evaluator`` and ``visualizer`` disabled.
    """
    cls = import_class(spec.model.class_path)
    parameters = inspect.signature(cls).parameters
    args = apply_weights_policy(cls, spec.model.init_args, spec.weights, spec.model.name)
    for component in _DISABLED_COMPONENTS:
        if component in args:
            raise ProtocolError(
                f"{spec.model.name}: init_args sets {component!r}; the harness turns it off and scores raw outputs."
            )
        if component in parameters:
            args[component] = False
    if "k_shot" in parameters and "k_shot" not in args:
        args["k_shot"] = spec.k_shot
    args = _grid_owned(spec.model, {"seed": spec.seed}, parameters, args)
    model = cls(**args)
    # models whose constructor does not expose the switches still must not post-process
    for component in _DISABLED_COMPONENTS:
        if getattr(model, component, None) is not None:
            setattr(model, component, None)
    return model


def _grid_owned(
    component: ComponentSpec,
    grid_values: dict[str, Any],
    parameters: Any,
    args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """init_args plus the grid's values for the parameters the class takes; the grid owns those keys."""
    args = dict(component.init_args if args is None else args)
    for key, value in grid_values.items():
        if key in args:
            raise ProtocolError(
                f"{component.name}: init_args sets {key!r}, which the grid controls (k_shots/seeds); remove it."
            )
        if key in parameters:
            args[key] = value
    return args

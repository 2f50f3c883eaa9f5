"""Benchmark configuration: a YAML grid of models x datasets x k x seed (x weights), expanded into runs.

A config file looks like this (every key but ``models`` and ``datasets`` is optional)::

    name: demo
    output: results/bench/demo          # results folder, relative to the working directory
    k_shots: [4, 16]
    seeds: [0, 1]
    weights: random                     # pretrained | random, or a list of both to grid over them
    evaluation:
      image_size: 224                   # the one resolution every model is scored at
      metrics: [image_AUROC, image_AP, image_F1max, pixel_AUROC, pixel_AP, pixel_F1max, pixel_AUPRO]
      gallery_size: 4                   # test images kept per run for the heatmap gallery
    trainer: {accelerator: auto}        # Engine/Trainer arguments for every run
    models:
      - name: PatchCore
        class_path: anomalib.models.Patchcore
        init_args: {backbone: resnet18, coreset_sampling_ratio: 0.01}
        trainer: {}                     # per-model Trainer arguments (override the global ones)
        weights: none                   # per-model override; ``none``: the model has no pretrained weights
    datasets:
      - name: phantom-brain
        class_path: fusionmedclip_anomalib.data.Phantom
        init_args: {modality: brain}

This module imports only the standard library and PyYAML, so the CLI starts fast.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PACKAGED_CONFIGS = ("demo", "ci", "paper", "ablation")
WEIGHTS_CHOICES = ("pretrained", "random", "none")
IMAGE_METRICS = ("image_AUROC", "image_AP", "image_F1max")
PIXEL_METRICS = ("pixel_AUROC", "pixel_AP", "pixel_F1max", "pixel_AUPRO")
ALL_METRICS = IMAGE_METRICS + PIXEL_METRICS

_TOP_KEYS = {
    "name",
    "description",
    "output",
    "k_shots",
    "seeds",
    "weights",
    "evaluation",
    "trainer",
    "models",
    "datasets",
}
_COMPONENT_KEYS = {"name", "class_path", "init_args", "trainer", "weights"}
_EVALUATION_KEYS = {"image_size", "metrics", "gallery_size", "aupro_fpr_limit"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ConfigError(ValueError):
    """The benchmark configuration is invalid; the message says where."""


@dataclass(frozen=True)
class ComponentSpec:
    """A model or datamodule: any importable class plus its constructor arguments.

    Args:
        name: label used in run ids and tables.
        class_path: dotted import path, e.g. ``anomalib.models.Patchcore``.
        init_args: constructor keyword arguments.
        trainer: Trainer arguments for this model only (models only).
        weights: ``pretrained``/``random``/``none`` for this model only, overriding the grid's ``weights``.
    """

    name: str
    class_path: str
    init_args: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None


@dataclass(frozen=True)
class EvaluationSpec:
    """How every run is scored.

    Args:
        image_size: common evaluation resolution; maps are resized bilinearly, masks by nearest neighbour.
        metrics: metric names out of :data:`ALL_METRICS`; pixel metrics are skipped for datasets without masks.
        gallery_size: test images (half abnormal, half normal) kept per run for the heatmap gallery.
        aupro_fpr_limit: false-positive-rate limit of AUPRO.
    """

    image_size: int = 224
    metrics: tuple[str, ...] = ALL_METRICS
    gallery_size: int = 4
    aupro_fpr_limit: float = 0.3


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: everything needed to repeat one run.

    Args:
        model: the model to build.
        dataset: the datamodule to build.
        k_shot: number of normal support images.
        seed: seed for everything (weights init, support sampling, training).
        weights: ``pretrained``, ``random`` or ``none`` (the model uses no pretrained weights).
        evaluation: scoring settings.
        trainer: Trainer arguments (global ones merged with the model's own).
    """

    model: ComponentSpec
    dataset: ComponentSpec
    k_shot: int
    seed: int
    weights: str
    evaluation: EvaluationSpec
    trainer: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """File-name-safe identifier, unique within a grid."""
        parts = [self.model.name, self.dataset.name, f"k{self.k_shot}", f"s{self.seed}", self.weights]
        return "__".join(_SAFE_NAME.sub("-", part) for part in parts)

    @property
    def support_id(self) -> str:
        """Identifier of the support set: every model of the same (dataset, k, seed) shares it."""
        return "__".join(_SAFE_NAME.sub("-", part) for part in (self.dataset.name, f"k{self.k_shot}", f"s{self.seed}"))

    @property
    def spec_hash(self) -> str:
        """Hash of everything that determines the result; a finished record counts only if it matches."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-serialisable), the inverse of :meth:`from_dict`."""
        data = asdict(self)
        data["evaluation"]["metrics"] = list(self.evaluation.metrics)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Rebuild a spec from :meth:`to_dict` output.

        Args:
            data: the plain-data form.

        Returns:
            The spec.
        """
        evaluation = dict(data["evaluation"])
        evaluation["metrics"] = tuple(evaluation["metrics"])
        return cls(
            model=ComponentSpec(**data["model"]),
            dataset=ComponentSpec(**data["dataset"]),
            k_shot=int(data["k_shot"]),
            seed=int(data["seed"]),
            weights=data["weights"],
            evaluation=EvaluationSpec(**evaluation),
            trainer=dict(data.get("trainer") or {}),
        )


@dataclass(frozen=True)
class BenchmarkConfig:
    """A parsed benchmark configuration.

    Args:
        name: config name (shown in outputs).
        models: models to compare.
        datasets: datamodules to run them on.
        k_shots: support-set sizes.
        seeds: seeds; tables report mean and std over them.
        weights: ``pretrained``/``random`` values to grid over.
        evaluation: scoring settings.
        trainer: Trainer arguments for every run.
        output: default results folder.
        description: free text.
        source: the file the config came from.
    """

    name: str
    models: tuple[ComponentSpec, ...]
    datasets: tuple[ComponentSpec, ...]
    k_shots: tuple[int, ...] = (4,)
    seeds: tuple[int, ...] = (0,)
    weights: tuple[str, ...] = ("pretrained",)
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    trainer: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    description: str = ""
    source: str | None = None

    def runs(self) -> list[RunSpec]:
        """Expand the grid. Models vary fastest, so a partial grid already compares models.

        Returns:
            The runs, ordered dataset -> weights -> k -> seed -> model.
        """
        runs = []
        for dataset in self.datasets:
            for grid_weights in self.weights:
                for k_shot in self.k_shots:
                    for seed in self.seeds:
                        for model in self.models:
                            runs.append(
                                RunSpec(
                                    model=model,
                                    dataset=dataset,
                                    k_shot=k_shot,
                                    seed=seed,
                                    weights=model.weights or grid_weights,
                                    evaluation=self.evaluation,
                                    trainer={**self.trainer, **model.trainer},
                                )
                            )
        # a model with its own ``weights`` would repeat once per grid weights value: keep it once
        unique = {run.run_id: run for run in runs}
        return list(unique.values())


def packaged_config_path(name: str) -> Path:
    """Path of a config shipped inside the package (``demo``, ``ci``, ``paper``, ``ablation``).

    Args:
        name: config name without ``.yaml``.

    Returns:
        The file path.
    """
    return Path(str(resources.files("fusionmedclip_anomalib.benchmark") / "configs" / f"{name}.yaml"))


def resolve_config_path(config: str | Path | None) -> Path:
    """Find a config: an existing file, or the name of a packaged config; the demo when ``None``.

    Args:
        config: path, packaged name, or ``None``.

    Returns:
        The config file path.

    Raises:
        ConfigError: neither a file nor a packaged config.
    """
    if config is None:
        return packaged_config_path("demo")
    path = Path(config)
    if path.is_file():
        return path
    if str(config) in PACKAGED_CONFIGS:
        return packaged_config_path(str(config))
    raise ConfigError(f"No config file {config!r} (packaged configs: {', '.join(PACKAGED_CONFIGS)}).")


def load_config(config: str | Path | None = None) -> BenchmarkConfig:
    """Read and validate a benchmark config.

    Args:
        config: path, packaged name, or ``None`` for the packaged demo.

    Returns:
        The parsed config.

    Raises:
        ConfigError: the file is not a valid benchmark config.
    """
    path = resolve_config_path(config)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    return parse_config(data, source=str(path))


def parse_config(data: Any, source: str | None = None) -> BenchmarkConfig:
    """Validate plain data (as read from YAML) into a :class:`BenchmarkConfig`.

    Args:
        data: the mapping read from YAML.
        source: where it came from (for messages).

    Returns:
        The parsed config.

    Raises:
        ConfigError: with the offending key in the message.
    """
    where = source or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level.")
    _reject_unknown(data, _TOP_KEYS, where)
    models = _components(data.get("models"), "models", where)
    datasets = _components(data.get("datasets"), "datasets", where)
    for dataset in datasets:
        if dataset.trainer or dataset.weights:
            raise ConfigError(f"{where}: datasets[{dataset.name}]: 'trainer' and 'weights' belong to models.")
    weights = _as_tuple(data.get("weights", "pretrained"), "weights", where, str)
    for value in weights + tuple(m.weights for m in models if m.weights):
        if value not in WEIGHTS_CHOICES:
            raise ConfigError(f"{where}: weights must be one of {', '.join(WEIGHTS_CHOICES)}, got {value!r}.")
    k_shots = _as_tuple(data.get("k_shots", [4]), "k_shots", where, int)
    seeds = _as_tuple(data.get("seeds", [0]), "seeds", where, int)
    if any(k < 0 for k in k_shots):
        raise ConfigError(f"{where}: k_shots must be >= 0.")
    trainer = data.get("trainer") or {}
    if not isinstance(trainer, dict):
        raise ConfigError(f"{where}: trainer must be a mapping of Trainer arguments.")
    return BenchmarkConfig(
        name=str(data.get("name") or Path(source or "benchmark").stem),
        models=models,
        datasets=datasets,
        k_shots=k_shots,
        seeds=seeds,
        weights=weights,
        evaluation=_evaluation(data.get("evaluation") or {}, where),
        trainer=dict(trainer),
        output=data.get("output"),
        description=str(data.get("description") or ""),
        source=source,
    )


def _components(items: Any, key: str, where: str) -> tuple[ComponentSpec, ...]:
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: '{key}' must be a non-empty list of {{name, class_path, init_args}}.")
    specs = []
    for index, item in enumerate(items):
        at = f"{where}: {key}[{index}]"
        if not isinstance(item, dict) or "class_path" not in item:
            raise ConfigError(f"{at}: needs at least a 'class_path'.")
        _reject_unknown(item, _COMPONENT_KEYS, at)
        init_args = item.get("init_args") or {}
        trainer = item.get("trainer") or {}
        if not isinstance(init_args, dict) or not isinstance(trainer, dict):
            raise ConfigError(f"{at}: 'init_args' and 'trainer' must be mappings.")
        class_path = str(item["class_path"])
        if "." not in class_path:
            raise ConfigError(f"{at}: class_path must be a dotted import path, got {class_path!r}.")
        name = str(item.get("name") or class_path.rsplit(".", 1)[-1])
        specs.append(ComponentSpec(name, class_path, dict(init_args), dict(trainer), item.get("weights")))
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{where}: {key} names must be unique; repeated: {', '.join(duplicates)}.")
    return tuple(specs)


def _evaluation(data: Any, where: str) -> EvaluationSpec:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: evaluation must be a mapping.")
    _reject_unknown(data, _EVALUATION_KEYS, f"{where}: evaluation")
    defaults = EvaluationSpec()
    metrics = _as_tuple(data.get("metrics", list(defaults.metrics)), "evaluation.metrics", where, str)
    unknown = [metric for metric in metrics if metric not in ALL_METRICS]
    if unknown:
        raise ConfigError(f"{where}: unknown metrics {unknown}; known: {', '.join(ALL_METRICS)}.")
    image_size = int(data.get("image_size", defaults.image_size))
    if image_size < 8:
        raise ConfigError(f"{where}: evaluation.image_size must be at least 8.")
    return EvaluationSpec(
        image_size=image_size,
        metrics=metrics,
        gallery_size=int(data.get("gallery_size", defaults.gallery_size)),
        aupro_fpr_limit=float(data.get("aupro_fpr_limit", defaults.aupro_fpr_limit)),
    )


def _as_tuple(value: Any, key: str, where: str, kind: type) -> tuple:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"{where}: '{key}' must not be empty.")
    try:
        return tuple(kind(item) for item in values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: '{key}' must hold {kind.__name__} values: {error}") from error


def _reject_unknown(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {', '.join(sorted(allowed))}.")

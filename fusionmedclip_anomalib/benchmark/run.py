"""One run of the grid: seed, build, fit, test once with the final weights, score the raw outputs.

The protocol, step by step:

1. ``lightning.seed_everything(seed)`` before anything random is built (anomalib's CLI flag does not seed).
2. Build the datamodule (with ``k_shot``/``seed`` when it takes them) and the model (weights option applied,
   post-processor/evaluator/visualizer off).
3. Draw and check the support set (:mod:`.support`): exactly k training images, no validation image in the test set.
4. ``Engine.fit``. For FEW/ZERO_SHOT models this is a ``validate`` call that collects reference embeddings.
   Validation batches are off by default (``limit_val_batches=0``): nothing is selected on them and the final
   weights are used regardless; a config can turn them on through ``trainer``.
5. One test pass through ``engine.trainer.test`` - not ``Engine.test``, which re-runs validation for FEW/ZERO_SHOT
   models - while :class:`~.outputs.RawOutputCollector` gathers raw scores and maps at the common resolution.
6. Metrics on those raw outputs (:mod:`.metrics`), timings, peak memory, versions -> one record.

A run that raises becomes a ``failed`` record carrying the error; it never stops the grid.
"""

from __future__ import annotations

import gc
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from fusionmedclip_anomalib.benchmark.config import RunSpec

RECORD_FORMAT = 1
MAX_WARNINGS = 20
TRAINER_DEFAULTS: dict[str, Any] = {
    "accelerator": "auto",
    "devices": 1,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "limit_val_batches": 0,
    "num_sanity_val_steps": 0,
}


@dataclass
class RunResult:
    """What a run produces; the store persists it, the runner only carries it (also across Ray workers).

    Args:
        record: the JSON record (``status`` ``ok`` or ``failed``).
        support_manifest: the support set description, ``None`` if the run failed before drawing it.
        gallery: a few test images with raw maps for the heatmap gallery.
    """

    record: dict[str, Any]
    support_manifest: dict[str, Any] | None = None
    gallery: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the run finished."""
        return self.record.get("status") == "ok"


def new_record(spec: RunSpec) -> dict[str, Any]:
    """The identifying part of a run record.

    Args:
        spec: the run.

    Returns:
        A record without results.
    """
    return {
        "format": RECORD_FORMAT,
        "run_id": spec.run_id,
        "spec_hash": spec.spec_hash,
        "status": "running",
        "model": spec.model.name,
        "dataset": spec.dataset.name,
        "k_shot": spec.k_shot,
        "seed": spec.seed,
        "weights": spec.weights,
        "spec": spec.to_dict(),
    }


def execute_run(spec: RunSpec) -> RunResult:
    """Run one cell of the grid. Never raises for a failing model or dataset: the record says ``failed``.

    Args:
        spec: the run.

    Returns:
        The result to store.
    """
    record = new_record(spec)
    record["started_at"] = _now()
    started = time.perf_counter()
    result = RunResult(record)
    caught: list[warnings.WarningMessage] = []
    try:
        # warnings go into the record (a run's own concerns, e.g. random weights), not onto the console
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _evaluate(spec, result)
        record["status"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure of a model/dataset is recorded, the grid goes on
        record["status"] = "failed"
        record["error"] = {
            "type": type(error).__name__,
            "message": str(error),
            "traceback": traceback.format_exc(),
        }
    finally:
        gc.collect()
        _empty_cuda_cache()
    record["warnings"] = _distinct_warnings(caught)
    record["finished_at"] = _now()
    record["duration_s"] = round(time.perf_counter() - started, 3)
    return result


def _evaluate(spec: RunSpec, result: RunResult) -> None:
    from anomalib.callbacks.checkpoint import ModelCheckpoint
    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything

    from fusionmedclip_anomalib.benchmark.environment import device_description, versions
    from fusionmedclip_anomalib.benchmark.factory import ProtocolError, build_datamodule, build_model
    from fusionmedclip_anomalib.benchmark.memory import measure_peak_memory
    from fusionmedclip_anomalib.benchmark.metrics import compute_metrics
    from fusionmedclip_anomalib.benchmark.outputs import RawOutputCollector
    from fusionmedclip_anomalib.benchmark.support import prepare_support_set

    record = result.record
    record["versions"] = versions()
    record["device"] = device_description()
    evaluation = spec.evaluation
    with measure_peak_memory() as memory, tempfile.TemporaryDirectory(prefix="fmc-bench-") as workdir:
        seed_everything(spec.seed, workers=True, verbose=False)
        datamodule, native_k_shot = build_datamodule(spec)
        model = build_model(spec)
        support, sizes = prepare_support_set(datamodule, spec.k_shot, spec.seed, native_k_shot)
        result.support_manifest = support.manifest
        record["support"] = {"source": support.source, "sha256": support.sha256, "files": len(support.files)}
        record["splits"] = {
            "train": sizes.train,
            "val": sizes.val,
            "test": sizes.test,
            "test_abnormal": sizes.test_abnormal,
        }
        record["learning_type"] = str(getattr(model.learning_type, "value", model.learning_type))

        collector = RawOutputCollector(evaluation.image_size, evaluation.gallery_size)
        trainer_args = {**TRAINER_DEFAULTS, **spec.trainer}
        # save_top_k=0: anomalib's checkpoint callback is replaced by one that writes nothing (CLIP checkpoints
        # are hundreds of MB); the final in-memory weights are what gets tested.
        engine = Engine(
            default_root_dir=workdir,
            callbacks=[collector, ModelCheckpoint(save_top_k=0)],
            **trainer_args,
        )
        fit_started = time.perf_counter()
        engine.fit(model, datamodule=datamodule)
        fit_s = time.perf_counter() - fit_started
        test_started = time.perf_counter()
        engine.trainer.test(model, datamodule=datamodule, verbose=False)
        test_s = time.perf_counter() - test_started
    if collector.test_passes != 1:
        raise ProtocolError(f"the test set was evaluated {collector.test_passes} times, expected once.")
    outputs = collector.result()
    if len(outputs.scores) != sizes.test:
        raise ProtocolError(f"scored {len(outputs.scores)} test images, the test set has {sizes.test}.")
    record["metrics"] = compute_metrics(outputs, evaluation.metrics, evaluation.aupro_fpr_limit)
    record["score_source"] = outputs.score_source
    record["has_masks"] = outputs.masks is not None
    record["timings"] = {
        "fit_s": round(fit_s, 3),
        "test_s": round(test_s, 3),
        "test_images_per_s": round(sizes.test / test_s, 3) if test_s > 0 else None,
    }
    record["memory"] = memory.as_dict()
    record["test_passes"] = collector.test_passes
    result.gallery = outputs.gallery


def _distinct_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    messages = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)
    return list(messages)[:MAX_WARNINGS]


def _empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

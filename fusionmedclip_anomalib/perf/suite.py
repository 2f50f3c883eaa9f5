"""The whole ``fusionmedclip perf`` measurement: inference, baselines, training, memory, size, start-up."""

from __future__ import annotations

import gc
import io
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from fusionmedclip_anomalib.perf.machine import describe_machine
from fusionmedclip_anomalib.perf.memory import MIB, measure_peak_memory
from fusionmedclip_anomalib.perf.profiling import (
    attention_kernels,
    count_flops,
    host_device_copies,
    profile_call,
    top_ops,
)
from fusionmedclip_anomalib.perf.startup import measure_startup
from fusionmedclip_anomalib.perf.subjects import (
    FusionMedCLIPSubjects,
    default_feature_layers,
    support_images,
    torch_threads,
)
from fusionmedclip_anomalib.perf.timing import Measurements, measure_interleaved, median

SCHEMA_VERSION = 1
# consecutive loader-fed optimiser steps per timed sample: the loader then has to keep up, as in training
LOADER_STEPS_PER_SAMPLE = 3
GOALS = {"inference_merged": 1.05, "inference_unmerged": 1.25, "training": 1.3, "startup_s": 1.5}


@dataclass
class PerfSettings:
    """What to measure and how often (the ``fusionmedclip perf`` options)."""

    backbone: str = "ViT-L-14"
    feature_layers: tuple[int, ...] | None = None
    device: str = "cpu"
    precision: str = "fp32"
    repeats: int = 10
    warmup: int = 2
    batch_sizes: tuple[int, ...] = (1, 8)
    train_batch_sizes: tuple[int, ...] = (8,)
    baselines: bool = True
    baseline_repeats: int = 3
    k_shot: int = 16
    threads: int | None = None
    loader_workers: int = 1
    seed: int = 0
    startup_repeats: int = 5
    min_sample_s: float = 0.2
    command: str = ""

    def resolved_layers(self) -> tuple[int, ...]:
        return tuple(self.feature_layers) if self.feature_layers else default_feature_layers(self.backbone)


class PerfRun:
    """Runs the measurement sections in order and keeps the result; with ``output`` the JSON is rewritten after
    every section, so an interrupted run (a time limit on a borrowed GPU) keeps what it measured."""

    def __init__(self, settings: PerfSettings, output: Path | None = None, log: Callable[[str], None] = print):
        self.settings = settings
        self.output = output
        self.log = log
        self.result: dict[str, object] = {}

    def run(self) -> dict[str, object]:
        """All sections; returns the result dictionary (also written to ``output``)."""
        settings = self.settings
        with torch_threads(settings.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(settings.seed)
            self.result = {
                "schema": SCHEMA_VERSION,
                "settings": {**asdict(settings), "feature_layers": list(settings.resolved_layers())},
                "machine": describe_machine(settings.device),
                "goals": GOALS,
            }
            self._section("startup", lambda: measure_startup(settings.startup_repeats))
            self.log(f"building FusionMedCLIP {settings.backbone} (random weights) and the bare tower ...")
            subjects = FusionMedCLIPSubjects.build(
                settings.backbone, settings.resolved_layers(), settings.device, settings.precision, settings.seed
            )
            self._section("parameters", lambda: parameter_section(subjects))
            self._section("inference", lambda: self.inference(subjects))
            self._section("profile", lambda: profile_section(subjects, max(settings.batch_sizes)))
            self._section("training", lambda: self.training(subjects))
            self.result["parameters"]["checkpoint_with_optimizer_bytes"] = checkpoint_bytes(subjects, optimiser=True)
            if settings.baselines:
                try:
                    self._section("baselines", lambda: self.baselines(subjects))
                except Exception as error:  # noqa: BLE001 - a failing baseline must not cost the sections measured
                    self.result["baselines"] = {"error": f"{type(error).__name__}: {error}"}
                    self.log(f"baselines failed: {self.result['baselines']['error']}")
            else:
                self.result["baselines"] = {"skipped": True}
            self._write()
        return self.result

    # -- sections ----------------------------------------------------------------------------------------------
    def inference(self, subjects: FusionMedCLIPSubjects) -> dict[str, object]:
        """FusionMedCLIP merged / unmerged against the bare tower, per batch size, plus peak memory."""
        section = {}
        for batch_size in self.settings.batch_sizes:
            images = support_images(batch_size, subjects.image_size, subjects.device, self.settings.seed)
            merged, bare = subjects.inference(subjects.merged, images), subjects.bare_inference(images)
            measured = self._measure(
                {
                    "fusionmedclip_merged": merged,
                    "fusionmedclip_unmerged": subjects.inference(subjects.unmerged, images),
                    "bare_backbone": bare,
                },
                self.settings.repeats,
            )
            flops = {"fusionmedclip": count_flops(merged), "bare_backbone": count_flops(bare)}
            ratio_merged = measured.ratio("fusionmedclip_merged", "bare_backbone")
            ratio_unmerged = measured.ratio("fusionmedclip_unmerged", "bare_backbone")
            section[f"batch_{batch_size}"] = {
                "batch_size": batch_size,
                **{name: throughput(measured, name, batch_size) for name in measured.seconds},
                "ratio_merged": ratio_merged,
                "ratio_unmerged": ratio_unmerged,
                "flops": flops,
                "flop_ratio": flops["fusionmedclip"] / flops["bare_backbone"],
                "meets_goal_merged": ratio_merged <= GOALS["inference_merged"],
                "meets_goal_unmerged": ratio_unmerged <= GOALS["inference_unmerged"],
                "memory": measure_peak_memory(merged, subjects.device),
                "samples": measured.to_dict(),
            }
            self.log(
                f"inference batch {batch_size}: {ratio_merged:.3f}x (merged), {ratio_unmerged:.3f}x (unmerged) the bare"
            )
        return section

    def training(self, subjects: FusionMedCLIPSubjects) -> dict[str, object]:
        """Optimiser steps with synthesis against the bare tower's forward+backward, what synthesis adds, memory."""
        section = {}
        for batch_size in self.settings.train_batch_sizes:
            images = support_images(batch_size, subjects.image_size, subjects.device, self.settings.seed)
            step = subjects.training_step(images, loader_workers=self.settings.loader_workers)
            presynthesised = subjects.training_step(
                images, synthesise=False, loader_workers=self.settings.loader_workers
            )
            bare = subjects.bare_forward_backward(images)
            measured = self._measure(
                {
                    "fusionmedclip_step": step,
                    "fusionmedclip_step_presynthesised": presynthesised,
                    "synthesis": subjects.synthesis(images),
                    "bare_forward_backward": bare,
                },
                self.settings.repeats,
                min_sample_s=0.0,
                min_calls={
                    name: LOADER_STEPS_PER_SAMPLE
                    for name in ("fusionmedclip_step", "fusionmedclip_step_presynthesised")
                },
            )
            flops = {"fusionmedclip_step": count_flops(presynthesised), "bare_forward_backward": count_flops(bare)}
            ratio = measured.ratio("fusionmedclip_step", "bare_forward_backward")
            added = measured.difference("fusionmedclip_step", "fusionmedclip_step_presynthesised")
            added_error = measured.difference_error("fusionmedclip_step", "fusionmedclip_step_presynthesised")
            synthesis = measured.median("synthesis")
            wait = median(step.batch_waits) - median(presynthesised.batch_waits)
            step_s = measured.median("fusionmedclip_step")
            section[f"batch_{batch_size}"] = {
                "batch_size": batch_size,
                "seconds_per_step": step_s,
                "seconds_per_step_presynthesised": measured.median("fusionmedclip_step_presynthesised"),
                "bare_forward_backward_s": measured.median("bare_forward_backward"),
                "ratio": ratio,
                "ratio_presynthesised": measured.ratio("fusionmedclip_step_presynthesised", "bare_forward_backward"),
                "flops": flops,
                "flop_ratio": flops["fusionmedclip_step"] / flops["bare_forward_backward"],
                "meets_goal": ratio <= GOALS["training"],
                "synthesis_s": synthesis,
                "synthesis_added_s": added,
                "synthesis_share_of_step": added / step_s,
                "synthesis_added_error_s": added_error,
                # how much longer a step waits for a synthesising loader's batch than for a ready-made one's
                "batch_wait_s": wait,
                # the loader hides synthesis when that extra wait is under half the synthesis time
                "synthesis_overlaps_compute": wait < 0.5 * synthesis,
                "synthesis_runs_in": f"{self.settings.loader_workers} DataLoader worker(s) (FusionMedCLIP's training loader)",
                "memory": measure_peak_memory(step, subjects.device),
                "samples": measured.to_dict(),
            }
            self.log(f"training batch {batch_size}: {step_s:.3f} s/step, {ratio:.3f}x the bare forward+backward")
        return section

    def baselines(self, subjects: FusionMedCLIPSubjects) -> dict[str, object]:
        """anomalib's WinCLIP and PatchCore per image, interleaved with FusionMedCLIP (merged) at each batch size."""
        from fusionmedclip_anomalib.perf.baselines import (
            PATCHCORE_IMAGE_SIZE,
            WINCLIP_IMAGE_SIZE,
            build_patchcore,
            build_winclip,
        )

        device, seed = subjects.device, self.settings.seed
        self.log("building anomalib WinCLIP and PatchCore (default settings, random weights) ...")
        winclip = build_winclip(device)
        support = support_images(self.settings.k_shot, PATCHCORE_IMAGE_SIZE, device, seed + 1000)
        patchcore = build_patchcore(device, support, seed)
        section: dict[str, object] = {
            "settings": {
                "winclip": {"backbone": "ViT-B-16-plus-240", "image_size": WINCLIP_IMAGE_SIZE, "k_shot": 0},
                "patchcore": {
                    "backbone": "wide_resnet50_2",
                    "image_size": PATCHCORE_IMAGE_SIZE,
                    "memory_bank": int(patchcore.memory_bank.shape[0]),
                    "support_images": self.settings.k_shot,
                },
                "repeats": self.settings.baseline_repeats,
                "precision": "fp32 (their default)",
            }
        }
        for batch_size in self.settings.batch_sizes:
            inputs = {
                size: support_images(batch_size, size, device, seed)
                for size in (subjects.image_size, WINCLIP_IMAGE_SIZE, PATCHCORE_IMAGE_SIZE)
            }
            measured = self._measure(
                {
                    "fusionmedclip_merged": subjects.inference(subjects.merged, inputs[subjects.image_size]),
                    "winclip": self._baseline_call(winclip, inputs[WINCLIP_IMAGE_SIZE]),
                    "patchcore": self._baseline_call(patchcore, inputs[PATCHCORE_IMAGE_SIZE]),
                },
                self.settings.baseline_repeats,
                warmup=1,
            )
            section[f"batch_{batch_size}"] = {
                "batch_size": batch_size,
                **{name: throughput(measured, name, batch_size) for name in measured.seconds},
                "fusionmedclip_speedup_vs_winclip": measured.ratio("winclip", "fusionmedclip_merged"),
                "fusionmedclip_speedup_vs_patchcore": measured.ratio("patchcore", "fusionmedclip_merged"),
                "samples": measured.to_dict(),
            }
            self.log(f"baselines batch {batch_size} measured")
        del winclip, patchcore
        gc.collect()
        return section

    # -- plumbing -----------------------------------------------------------------------------------------------
    @staticmethod
    def _baseline_call(model: torch.nn.Module, images: torch.Tensor) -> Callable[[], object]:
        """One batch through a baseline at its own default precision (float32)."""

        def run() -> object:
            with torch.inference_mode():
                return model(images)

        return run

    def _measure(
        self,
        subjects: dict,
        repeats: int,
        warmup: int | None = None,
        min_sample_s: float | None = None,
        min_calls: dict[str, int] | None = None,
    ):
        synchronize = torch.cuda.synchronize if self.settings.device.startswith("cuda") else None
        return measure_interleaved(
            subjects,
            repeats=repeats,
            warmup=self.settings.warmup if warmup is None else warmup,
            synchronize=synchronize,
            min_sample_s=self.settings.min_sample_s if min_sample_s is None else min_sample_s,
            min_calls=min_calls,
        )

    def _section(self, name: str, compute: Callable[[], object]) -> None:
        start = time.perf_counter()
        self.result[name] = compute()
        self.result.setdefault("section_seconds", {})[name] = time.perf_counter() - start
        self._write()

    def _write(self) -> None:
        if self.output is not None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.output.with_suffix(self.output.suffix + ".tmp")
            temporary.write_text(json.dumps(self.result, indent=2, default=str) + "\n")
            temporary.replace(self.output)


def throughput(measured: Measurements, name: str, batch_size: int) -> dict[str, float]:
    """Seconds per batch and images per second of one subject."""
    seconds = measured.median(name)
    return {"seconds_per_batch": seconds, "images_per_s": batch_size / seconds}


def parameter_section(subjects: FusionMedCLIPSubjects) -> dict[str, object]:
    """Trainable parameters per group and in total, and the compact checkpoint's size."""
    from fusionmedclip_anomalib.models.fusionmedclip.parameter_report import parameter_report

    weights = sum(t.numel() * t.element_size() for t in (*subjects.merged.parameters(), *subjects.merged.buffers()))
    return {
        **parameter_report(subjects.module.model),
        "model_weights_mib": weights / MIB,
        "checkpoint_bytes": checkpoint_bytes(subjects, optimiser=False),
    }


def checkpoint_bytes(subjects: FusionMedCLIPSubjects, optimiser: bool) -> int:
    """Size of the Lightning checkpoint FusionMedCLIP writes (its ``on_save_checkpoint`` keeps the trainable state
    and the backbone's identity), without or with the AdamW state."""
    module = subjects.module
    checkpoint: dict[str, object] = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    if optimiser:
        checkpoint["optimizer_states"] = [subjects.optimiser.state_dict()]
    module.on_save_checkpoint(checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getbuffer().nbytes


def profile_section(subjects: FusionMedCLIPSubjects, batch_size: int) -> dict[str, object]:
    """Attention kernels, host<->device copies and the top ops of one merged-LoRA eval batch and of the bare
    tower."""
    images = support_images(batch_size, subjects.image_size, subjects.device)
    section: dict[str, object] = {"batch_size": batch_size}
    for name, work in (
        ("fusionmedclip_merged", subjects.inference(subjects.merged, images)),
        ("bare_backbone", subjects.bare_inference(images)),
    ):
        work()
        profiler = profile_call(work, subjects.device)
        section[name] = {
            "attention_kernels": attention_kernels(profiler),
            "host_device_copies": host_device_copies(profiler),
            "top_ops": top_ops(profiler),
        }
    return section

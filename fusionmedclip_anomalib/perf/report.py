"""Markdown tables from ``fusionmedclip perf`` results, and refreshing a marked block of a Markdown file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from fusionmedclip_anomalib.perf.machine import machine_line

START_MARKER = "<!-- perf:start -->"
END_MARKER = "<!-- perf:end -->"


class MarkersNotFound(ValueError):
    """The Markdown file lacks the start/end markers of the block to refresh (or has them out of order)."""


def replace_marked_block(text: str, block: str, start: str = START_MARKER, end: str = END_MARKER) -> str:
    """``text`` with everything between the ``start`` and ``end`` marker lines replaced by ``block``.

    The markers themselves and everything outside them are kept byte for byte.

    Raises:
        MarkersNotFound: a marker is missing, repeated, or the end comes before the start.

    Example:
        >>> replace_marked_block("a\\n<!-- perf:start -->\\nold\\n<!-- perf:end -->\\nb\\n", "new")
        'a\\n<!-- perf:start -->\\nnew\\n<!-- perf:end -->\\nb\\n'
    """
    if text.count(start) != 1 or text.count(end) != 1:
        raise MarkersNotFound(f"expected exactly one {start!r} and one {end!r} in the file")
    head, rest = text.split(start, 1)
    if end not in rest:
        raise MarkersNotFound(f"{end!r} comes before {start!r}")
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block.strip()}\n{end}{tail}"


def refresh_markdown_file(path: Path, block: str) -> None:
    """Replace the marked perf block of the Markdown file at ``path`` in place."""
    path.write_text(replace_marked_block(path.read_text(), block))


# -- rendering ----------------------------------------------------------------------------------------------------
def _number(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if magnitude < 100 else f"{value:.0f}"
    return str(value)


def _goal(ok: object, goal: str) -> str:
    if ok is None:
        return goal
    return f"{goal} {'✓' if ok else '✗'}"


def _overlap(value: bool | None) -> str:
    return "undecided (synthesis within the step's noise)" if value is None else _number(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _batches(section: dict) -> list[dict]:
    return sorted(
        (value for key, value in section.items() if key.startswith("batch_") and isinstance(value, dict)),
        key=lambda entry: entry["batch_size"],
    )


def _row(label: str, entries: Sequence[dict], value: Callable[[dict], object], goal: str = "") -> list[str]:
    return [label, *(_number(value(entry)) for entry in entries), goal]


def _memory_rows(entries: Sequence[dict], during: str) -> list[list[str]]:
    rows = [
        _row("peak RSS (MiB)", entries, lambda e: e["memory"]["rss_peak_mib"]),
        _row(f"RSS increase during the {during} (MiB)", entries, lambda e: e["memory"]["rss_increase_mib"]),
    ]
    if any(entry["memory"].get("cuda_max_allocated_mib") is not None for entry in entries):
        rows.append(_row("CUDA max allocated (MiB)", entries, lambda e: e["memory"]["cuda_max_allocated_mib"]))
    return rows


def _inference_lines(result: dict) -> list[str]:
    entries = _batches(result.get("inference", {}))
    if not entries:
        return []
    goals = result.get("goals", {})
    deepest = max(result["settings"]["feature_layers"])
    merged_ok = all(e["meets_goal_merged"] for e in entries)
    unmerged_ok = all(e["meets_goal_unmerged"] for e in entries)
    rows = [
        _row("FusionMedCLIP, LoRA merged (img/s)", entries, lambda e: e["fusionmedclip_merged"]["images_per_s"]),
        _row("FusionMedCLIP, LoRA unmerged (img/s)", entries, lambda e: e["fusionmedclip_unmerged"]["images_per_s"]),
        _row(f"bare open_clip tower to block {deepest} (img/s)", entries, lambda e: e["bare_backbone"]["images_per_s"]),
        _row(
            "time ratio merged / bare",
            entries,
            lambda e: e["ratio_merged"],
            _goal(merged_ok, f"≤ {goals.get('inference_merged', 1.05)}"),
        ),
        _row(
            "time ratio unmerged / bare",
            entries,
            lambda e: e["ratio_unmerged"],
            _goal(unmerged_ok, f"≤ {goals.get('inference_unmerged', 1.25)}"),
        ),
        _row("FLOP ratio FusionMedCLIP / bare (the floor)", entries, lambda e: e.get("flop_ratio")),
        *_memory_rows(entries, "batch"),
    ]
    return ["", *_table(["inference", *(f"batch {e['batch_size']}" for e in entries), "goal"], rows)]


def _baseline_lines(result: dict) -> list[str]:
    baselines = result.get("baselines", {})
    entries = _batches(baselines)
    if not entries:
        if baselines.get("error"):
            return ["", f"Baselines (WinCLIP, PatchCore) failed in this run: {baselines['error']}"]
        skipped = baselines.get("skipped")
        return ["", "Baselines (WinCLIP, PatchCore) not measured in this run (`--no-baselines`)."] if skipped else []
    rows = [
        _row("FusionMedCLIP, LoRA merged (img/s)", entries, lambda e: e["fusionmedclip_merged"]["images_per_s"]),
        _row("anomalib WinCLIP (img/s)", entries, lambda e: e["winclip"]["images_per_s"]),
        _row("anomalib PatchCore (img/s)", entries, lambda e: e["patchcore"]["images_per_s"]),
        _row("FusionMedCLIP speed-up vs WinCLIP (×)", entries, lambda e: e["fusionmedclip_speedup_vs_winclip"]),
        _row("FusionMedCLIP speed-up vs PatchCore (×)", entries, lambda e: e["fusionmedclip_speedup_vs_patchcore"]),
    ]
    info = baselines.get("settings", {})
    patchcore = info.get("patchcore", {})
    note = (
        "anomalib 2.7 defaults (float32) with random weights: WinCLIP zero-shot, ViT-B-16-plus-240 at 240 px; "
        f"PatchCore wide_resnet50_2 at 256 px, memory bank of {patchcore.get('memory_bank', '?')} patches (10 % of "
        f"{patchcore.get('support_images', '?')} images); {info.get('repeats', '?')} interleaved runs each."
    )
    header = ["per image vs anomalib", *(f"batch {e['batch_size']}" for e in entries), ""]
    return ["", *_table(header, rows), "", note]


def _training_lines(result: dict) -> list[str]:
    entries = _batches(result.get("training", {}))
    if not entries:
        return []
    goal = _goal(all(e["meets_goal"] for e in entries), f"≤ {result.get('goals', {}).get('training', 1.3)}")
    rows = [
        _row("s per optimiser step (with synthesis)", entries, lambda e: e["seconds_per_step"]),
        _row("bare tower + LoRA forward+backward (s)", entries, lambda e: e["bare_forward_backward_s"]),
        _row("time ratio step / bare forward+backward", entries, lambda e: e["ratio"], goal),
        _row("same, pairs synthesised beforehand", entries, lambda e: e["ratio_presynthesised"]),
        _row("FLOP ratio step / bare forward+backward", entries, lambda e: e.get("flop_ratio")),
        _row("synthesis of the batch alone (s)", entries, lambda e: e["synthesis_s"]),
        [
            "synthesis added to the step (s)",
            *(f"{_number(e['synthesis_added_s'])} ± {_number(e.get('synthesis_added_error_s'), 2)}" for e in entries),
            "",
        ],
        _row("extra wait for a synthesised batch (s)", entries, lambda e: e.get("batch_wait_s")),
        [
            "synthesis overlaps compute (DataLoader worker)",
            *(_overlap(e["synthesis_overlaps_compute"]) for e in entries),
            "",
        ],
        *_memory_rows(entries, "step"),
    ]
    return ["", *_table(["training", *(f"batch {e['batch_size']}" for e in entries), "goal"], rows)]


def _size_lines(result: dict) -> list[str]:
    parameters, startup = result.get("parameters", {}), result.get("startup", {})
    rows = []
    if parameters:
        share = f"{parameters['trainable']:,} of {parameters['total']:,} ({parameters['trainable_percent']:.2f} %)"
        rows += [
            ["trainable parameters", share, ""],
            ["checkpoint, weights only (MB)", _number(parameters["checkpoint_bytes"] / 1e6), ""],
        ]
        if parameters.get("checkpoint_with_optimizer_bytes"):
            with_state = _number(parameters["checkpoint_with_optimizer_bytes"] / 1e6)
            rows.append(["checkpoint with AdamW state (MB)", with_state, ""])
    if startup:
        goal = _goal(startup.get("meets_goal"), f"< {startup.get('goal_s', 1.5)}")
        rows.append([f"`{startup['command']}` wall time (s)", _number(startup["median_s"]), goal])
    return ["", *_table(["size and start-up", "value", "goal"], rows)] if rows else []


def _kernel_lines(result: dict) -> list[str]:
    merged = result.get("profile", {}).get("fusionmedclip_merged", {})
    if merged.get("attention_kernels") is None:
        return []
    seen = ", ".join(f"`{name}` ×{count}" for name, count in sorted(merged["attention_kernels"].items())) or "none"
    lines = ["", f"Attention kernels in one eval batch with LoRA merged: {seen}."]
    if merged.get("host_device_copies") is not None:
        lines.append(f"Host↔device copies in that batch: {merged['host_device_copies']}.")
    return lines


def render_markdown(result: dict, heading_level: int = 3) -> str:
    """One Markdown section for one ``fusionmedclip perf`` result: inference, baselines, training, memory, size,
    start-up and the attention kernels seen, with the machine and the exact settings named."""
    settings = result["settings"]
    layers = ", ".join(map(str, settings["feature_layers"]))
    method = (
        f"Feature layers ({layers}), random weights. Every figure is the median of {settings['repeats']} interleaved "
        f"runs after {settings['warmup']} warm-up runs; every ratio is the median of per-round ratios."
    )
    lines = [
        f"{'#' * heading_level} {settings['backbone']} · {settings['device']} · {settings['precision']}",
        "",
        f"Machine: {machine_line(result['machine'])}.  ",
        method,
    ]
    if settings.get("command"):
        lines += ["", f"`{settings['command']}`"]
    for section in (_inference_lines, _baseline_lines, _training_lines, _size_lines, _kernel_lines):
        lines += section(result)
    return "\n".join(lines) + "\n"


def render_results(results: Sequence[dict], title: str | None = None) -> str:
    """Markdown for several results (one section each), optionally under a title line."""
    parts = [f"{title}\n" if title else "", *(render_markdown(result) for result in results)]
    return "\n".join(part for part in parts if part)

"""Leaderboard: mean ± std over seeds per (dataset, k, model) as CSV, Markdown and LaTeX, plots, heatmap galleries.

- ``leaderboard.csv``: numbers as fractions, full precision, one row per (dataset, k_shot, model, weights) with
  ``<metric>_mean``/``<metric>_std`` columns (sample std, ddof=1; empty with a single seed), the seed and failure
  counts, and mean fit time, test throughput and the highest peak memory. The regression gate reads this file.
- ``leaderboard.md`` / ``leaderboard.tex``: the same in percent, ``mean ± std``; the best mean of each column
  within a (dataset, k) block in bold.
- ``plots/<metric>.png``: the metric against k, one line per model, error bars = std over seeds.
- ``gallery/<run_id>.png``: image | raw anomaly map | ground truth for a few test images of one run.

Runs with random weights are labelled ``(random weights)`` everywhere: their numbers check the pipeline, not the
method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionmedclip_anomalib.benchmark.config import ALL_METRICS, BenchmarkConfig

KEYS = ["dataset", "k_shot", "model", "weights"]
METRIC_LABELS = {
    "image_AUROC": "Image AUROC",
    "image_AP": "Image AP",
    "image_F1max": "Image F1max",
    "pixel_AUROC": "Pixel AUROC",
    "pixel_AP": "Pixel AP",
    "pixel_F1max": "Pixel F1max",
    "pixel_AUPRO": "AUPRO",
}
RANDOM_LABEL = " (random weights)"
RANDOM_NOTE = "Models marked (random weights) ran without pretrained weights: their scores test the pipeline only."


def model_label(model: str, weights: str) -> str:
    """Display name of a model, labelled when its weights are random."""
    return f"{model}{RANDOM_LABEL}" if weights == "random" else model


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run record.

    Args:
        records: run records (``ok`` and ``failed``).

    Returns:
        Columns: run_id, status, dataset, k_shot, model, weights, seed, one column per metric, fit_s, test_s,
        test_images_per_s, peak_rss_mb, cuda_max_allocated_mb.
    """
    rows = []
    for record in records:
        timings = record.get("timings") or {}
        memory = record.get("memory") or {}
        metrics = record.get("metrics") or {}
        rows.append(
            {
                "run_id": record["run_id"],
                "status": record.get("status"),
                "dataset": record["dataset"],
                "k_shot": int(record["k_shot"]),
                "model": record["model"],
                "weights": record.get("weights", "pretrained"),
                "seed": int(record["seed"]),
                **{name: _number(metrics.get(name)) for name in ALL_METRICS},
                "fit_s": _number(timings.get("fit_s")),
                "test_s": _number(timings.get("test_s")),
                "test_images_per_s": _number(timings.get("test_images_per_s")),
                "peak_rss_mb": _number(memory.get("peak_rss_mb")),
                "cuda_max_allocated_mb": _number(memory.get("cuda_max_allocated_mb")),
            }
        )
    columns = [
        "run_id",
        "status",
        *KEYS,
        "seed",
        *ALL_METRICS,
        "fit_s",
        "test_s",
        "test_images_per_s",
        "peak_rss_mb",
        "cuda_max_allocated_mb",
    ]
    return pd.DataFrame(rows, columns=columns)


def aggregate(
    frame: pd.DataFrame,
    metrics: tuple[str, ...] = ALL_METRICS,
    model_order: list[str] | None = None,
    dataset_order: list[str] | None = None,
) -> pd.DataFrame:
    """Mean and std over seeds of the finished runs, per (dataset, k_shot, model, weights).

    Args:
        frame: :func:`records_frame` output.
        metrics: metric columns to aggregate.
        model_order: model names in display order (config order); others follow alphabetically.
        dataset_order: dataset names in display order.

    Returns:
        One row per group with ``n_seeds`` (finished runs), ``n_failed``, ``<metric>_mean``, ``<metric>_std``
        (ddof=1, NaN for one seed), ``fit_s_mean``, ``test_images_per_s_mean``, ``peak_rss_mb_max``. Groups whose
        runs all failed are kept, with NaN metrics.
    """
    columns = [*KEYS, "n_seeds", "n_failed"]
    for metric in metrics:
        columns += [f"{metric}_mean", f"{metric}_std"]
    columns += ["fit_s_mean", "test_images_per_s_mean", "peak_rss_mb_max"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    ok = frame[frame["status"] == "ok"]
    groups = frame.groupby(KEYS, sort=False)
    result = groups.size().rename("n_runs").to_frame()
    result["n_seeds"] = ok.groupby(KEYS, sort=False).size()
    result["n_seeds"] = result["n_seeds"].fillna(0).astype(int)
    result["n_failed"] = result["n_runs"] - result["n_seeds"]
    ok_groups = ok.groupby(KEYS, sort=False)
    for metric in metrics:
        result[f"{metric}_mean"] = ok_groups[metric].mean()
        result[f"{metric}_std"] = ok_groups[metric].std(ddof=1)
    result["fit_s_mean"] = ok_groups["fit_s"].mean()
    result["test_images_per_s_mean"] = ok_groups["test_images_per_s"].mean()
    result["peak_rss_mb_max"] = ok_groups["peak_rss_mb"].max()
    result = result.reset_index()[columns]
    return _ordered(result, model_order, dataset_order)


def _ordered(table: pd.DataFrame, model_order: list[str] | None, dataset_order: list[str] | None) -> pd.DataFrame:
    def rank(order: list[str] | None, values: pd.Series) -> pd.Series:
        known = {name: index for index, name in enumerate(order or [])}
        alphabetical = {name: len(known) + index for index, name in enumerate(sorted(set(values) - set(known)))}
        return values.map({**alphabetical, **known})

    table = table.assign(
        _dataset=rank(dataset_order, table["dataset"]),
        _model=rank(model_order, table["model"]),
        _weights=table["weights"].map({"pretrained": 0, "none": 1, "random": 2}).fillna(3),
    )
    table = table.sort_values(["_dataset", "k_shot", "_model", "_weights"], kind="stable")
    return table.drop(columns=["_dataset", "_model", "_weights"]).reset_index(drop=True)


def present_metrics(table: pd.DataFrame, metrics: tuple[str, ...] = ALL_METRICS) -> list[str]:
    """Metrics with at least one value in an aggregated table."""
    return [m for m in metrics if f"{m}_mean" in table and table[f"{m}_mean"].notna().any()]


def best_mask(table: pd.DataFrame, metric: str) -> pd.Series:
    """Rows holding the best (highest) mean of ``metric`` within their (dataset, k_shot) block."""
    column = f"{metric}_mean"
    best = table.groupby(["dataset", "k_shot"], sort=False)[column].transform("max")
    return table[column].notna() & np.isclose(table[column].fillna(-np.inf), best.fillna(np.inf), rtol=0, atol=1e-12)


def _cell(mean: float, std: float) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    if std is None or math.isnan(std):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _resource_cells(row: pd.Series) -> list[str]:
    def fmt(value: float, digits: int) -> str:
        return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"

    return [fmt(row["fit_s_mean"], 1), fmt(row["test_images_per_s_mean"], 1), fmt(row["peak_rss_mb_max"], 0)]


def _seeds_cell(row: pd.Series) -> str:
    failed = int(row["n_failed"])
    return f"{int(row['n_seeds'])}" + (f" ({failed} failed)" if failed else "")


def to_markdown(table: pd.DataFrame, metrics: list[str] | None = None) -> str:
    """Markdown leaderboard in percent, best per column and (dataset, k) block in bold.

    Args:
        table: :func:`aggregate` output.
        metrics: metric columns to show (default: those with values).

    Returns:
        The Markdown text, with a legend.
    """
    metrics = metrics if metrics is not None else present_metrics(table)
    header = [
        "Dataset",
        "k",
        "Model",
        *(METRIC_LABELS[m] for m in metrics),
        "Fit (s)",
        "Test img/s",
        "Peak RSS (MB)",
        "Seeds",
    ]
    align = ["---", "---:", "---", *(["---:"] * (len(header) - 3))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    marks = {metric: best_mask(table, metric) for metric in metrics}
    for index, row in table.iterrows():
        cells = [str(row["dataset"]), str(row["k_shot"]), model_label(row["model"], row["weights"])]
        for metric in metrics:
            text = _cell(row[f"{metric}_mean"], row[f"{metric}_std"])
            cells.append(f"**{text}**" if marks[metric][index] else text)
        cells += [*_resource_cells(row), _seeds_cell(row)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _legend(table)]
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame, metrics: list[str] | None = None, caption: str = "Benchmark results.") -> str:
    """LaTeX (booktabs) leaderboard in percent, best per column and (dataset, k) block in bold.

    Args:
        table: :func:`aggregate` output.
        metrics: metric columns to show (default: those with values).
        caption: table caption; the legend is appended to it.

    Returns:
        A ``table`` environment.
    """
    metrics = metrics if metrics is not None else present_metrics(table)
    header = ["Dataset", "$k$", "Model", *(METRIC_LABELS[m] for m in metrics), "Fit (s)", "Img/s"]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{ll" + "l" + "r" * (len(header) - 3) + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    marks = {metric: best_mask(table, metric) for metric in metrics}
    previous_block = None
    for index, row in table.iterrows():
        block = (row["dataset"], row["k_shot"])
        if previous_block is not None and block != previous_block:
            lines.append(r"\midrule")
        previous_block = block
        cells = [
            _latex_escape(str(row["dataset"])),
            str(row["k_shot"]),
            _latex_escape(model_label(row["model"], row["weights"])),
        ]
        for metric in metrics:
            text = _cell(row[f"{metric}_mean"], row[f"{metric}_std"]).replace("±", r"$\pm$").replace("–", "--")
            cells.append(rf"\textbf{{{text}}}" if marks[metric][index] else text)
        cells += [c.replace("–", "--") for c in _resource_cells(row)[:2]]
        lines.append(" & ".join(cells) + r" \\")
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{{_latex_escape(caption + ' ' + _legend(table))}}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def _legend(table: pd.DataFrame) -> str:
    text = "Mean ± std over seeds, in %; bold: best of its column within a (dataset, k) block."
    if (table["weights"] == "random").any():
        text += " " + RANDOM_NOTE
    return text


def _latex_escape(text: str) -> str:
    replacements = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "±": r"$\pm$",
    }
    return "".join(replacements.get(char, char) for char in text)


def plot_metric(table: pd.DataFrame, metric: str, path: Path) -> Path:
    """Plot ``metric`` (%) against k: one subplot per dataset, one line per model, error bars = std over seeds.

    Args:
        table: :func:`aggregate` output.
        metric: metric name.
        path: PNG to write.

    Returns:
        The path.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    datasets = list(dict.fromkeys(table["dataset"]))
    figure, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.2), squeeze=False)
    for axis, dataset in zip(axes[0], datasets, strict=True):
        block = table[table["dataset"] == dataset]
        for (model, weights), rows in block.groupby(["model", "weights"], sort=False):
            rows = rows.sort_values("k_shot")
            axis.errorbar(
                rows["k_shot"],
                100 * rows[f"{metric}_mean"],
                yerr=100 * rows[f"{metric}_std"].fillna(0),
                marker="o",
                capsize=3,
                label=model_label(model, weights),
            )
        ks = sorted(block["k_shot"].unique())
        axis.set_xscale("log", base=2)
        axis.set_xticks(ks, [str(k) for k in ks])
        axis.set_xlabel("k (normal support images)")
        axis.set_ylabel(f"{METRIC_LABELS[metric]} (%)")
        axis.set_title(dataset)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    title = f"{METRIC_LABELS[metric]} vs k (mean ± std over seeds)"
    if (table["weights"] == "random").any():
        title += "\n(random weights) = pipeline check only"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def render_gallery(samples_path: Path, path: Path, title: str) -> Path:
    """Image | raw anomaly map | ground truth for the test images kept by a run.

    Args:
        samples_path: the run's ``samples/<run_id>.npz``.
        path: PNG to write.
        title: figure title (run id, weights label).

    Returns:
        The path.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    with np.load(samples_path, allow_pickle=False) as data:
        samples = {key: data[key] for key in data.files}
    count = len(samples["image"])
    maps = samples["anomaly_map"]
    low, high = float(np.nanmin(maps)), float(np.nanmax(maps))
    figure, axes = plt.subplots(count, 3, figsize=(8.4, 2.8 * count), squeeze=False)
    for row in range(count):
        label = "abnormal" if int(samples["label"][row]) == 1 else "normal"
        axes[row][0].imshow(samples["image"][row])
        axes[row][0].set_title(f"{label} | score {samples['score'][row]:.4g}", fontsize=8)
        shown = axes[row][1].imshow(maps[row], cmap="jet", vmin=low, vmax=high)
        axes[row][1].set_title("anomaly map (raw, shared scale)", fontsize=8)
        figure.colorbar(shown, ax=axes[row][1], fraction=0.046, pad=0.04)
        axes[row][2].imshow(samples["mask"][row], cmap="gray", vmin=0, vmax=1)
        axes[row][2].set_title("ground truth", fontsize=8)
        for axis in axes[row]:
            axis.set_axis_off()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


@dataclass
class LeaderboardFiles:
    """What :func:`write_leaderboard` wrote."""

    table: pd.DataFrame
    markdown: str
    csv: Path
    markdown_path: Path
    latex: Path
    plots: list[Path] = field(default_factory=list)
    galleries: list[Path] = field(default_factory=list)
    stale: int = 0


def select_records(records: list[dict[str, Any]], config: BenchmarkConfig | None) -> tuple[list[dict], int]:
    """The records that belong to ``config``'s grid as it is now (all records without a config).

    Args:
        records: every record in the store.
        config: the grid, or ``None``.

    Returns:
        The matching records and the number of records left out (other grids or stale specs).
    """
    if config is None:
        return records, 0
    wanted = {spec.run_id: spec.spec_hash for spec in config.runs()}
    chosen = [r for r in records if wanted.get(r.get("run_id")) == r.get("spec_hash")]
    return chosen, len(records) - len(chosen)


def default_gallery_run(frame: pd.DataFrame, model_order: list[str] | None) -> str | None:
    """The run drawn by default: first model of the config, largest k, lowest seed, finished."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return None
    first_model = next((m for m in (model_order or []) if m in set(ok["model"])), ok["model"].iloc[0])
    runs = ok[ok["model"] == first_model].sort_values(["k_shot", "seed"], ascending=[False, True])
    return str(runs["run_id"].iloc[0])


def write_leaderboard(
    store: Any,
    config: BenchmarkConfig | None = None,
    gallery_runs: list[str] | None = None,
    records: list[dict[str, Any]] | None = None,
) -> LeaderboardFiles:
    """Write tables, plots and galleries into the results folder.

    Args:
        store: the :class:`~fusionmedclip_anomalib.benchmark.store.ResultStore`.
        config: the grid (orders rows, filters stale records); ``None`` uses every record.
        gallery_runs: run ids to draw; ``None`` draws :func:`default_gallery_run`, ``[]`` none.
        records: records to use instead of reading the store (``config`` filtering still applies).

    Returns:
        The aggregated table, the Markdown text and the written paths.
    """
    all_records = store.records() if records is None else [r for r in records if r is not None]
    chosen, stale = select_records(all_records, config)
    frame = records_frame(chosen)
    model_order = [m.name for m in config.models] if config else None
    dataset_order = [d.name for d in config.datasets] if config else None
    metrics = config.evaluation.metrics if config else ALL_METRICS
    table = aggregate(frame, metrics, model_order, dataset_order)
    root = Path(store.root)
    root.mkdir(parents=True, exist_ok=True)
    csv_path = root / "leaderboard.csv"
    table.to_csv(csv_path, index=False, float_format="%.6f")
    markdown = to_markdown(table)
    markdown_path = root / "leaderboard.md"
    markdown_path.write_text(markdown)
    latex_path = root / "leaderboard.tex"
    caption = f"Benchmark {config.name}." if config else "Benchmark results."
    latex_path.write_text(to_latex(table, caption=caption))
    plots = [plot_metric(table, metric, root / "plots" / f"{metric}.png") for metric in present_metrics(table, metrics)]
    if gallery_runs is None:
        default = default_gallery_run(frame, model_order)
        gallery_runs = [default] if default else []
    galleries = []
    for run_id in gallery_runs:
        samples = store.samples_path(run_id)
        if not samples.is_file():
            raise FileNotFoundError(f"run {run_id!r} has no gallery samples ({samples}).")
        weights = frame.loc[frame["run_id"] == run_id, "weights"]
        label = " - random weights" if not weights.empty and weights.iloc[0] == "random" else ""
        galleries.append(render_gallery(samples, root / "gallery" / f"{run_id}.png", f"{run_id}{label}"))
    return LeaderboardFiles(table, markdown, csv_path, markdown_path, latex_path, plots, galleries, stale)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)

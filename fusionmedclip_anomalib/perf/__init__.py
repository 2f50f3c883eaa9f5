"""``fusionmedclip perf``: FusionMedCLIP's speed and memory against the bare backbone and anomalib's baselines.

Measures, on one device and precision, with every figure a median over interleaved runs after warm-up and every
ratio the median of per-round ratios (so machine noise cancels):

- inference images/s at each batch size, LoRA merged and unmerged, against open_clip's own vision forward up to
  the deepest feature block (same weights, precision and input), and the time ratios;
- anomalib's WinCLIP and PatchCore per image at their default settings (random weights), interleaved with
  FusionMedCLIP;
- training: seconds per optimiser step fed by a DataLoader worker that synthesises the anomalies (as in training),
  against one forward+backward of the bare tower with the same LoRA; what synthesis adds to a step, and how long
  a step waits for its batch (synthesis overlaps compute when that wait is under half the synthesis time);
- peak memory (CPU RSS, CUDA max allocated) of an inference batch and of a training step;
- trainable parameters, checkpoint size, and the start-up time of ``fusionmedclip --help``.

It prints Markdown tables, writes JSON (``--output``), and can refresh the block between ``<!-- perf:start -->``
and ``<!-- perf:end -->`` of a Markdown file (``--readme``) or write the tables to a file (``--markdown-out``).
``--render`` builds the tables from saved JSON files without measuring.

Only ``argparse`` is imported at module level: ``fusionmedclip perf --help`` starts instantly.

Example:
    fusionmedclip perf --backbone fmc-tiny --device cpu --threads 1 --output perf.json --markdown-out perf.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BACKBONES = ("ViT-L-14", "ViT-B-16", "fmc-tiny")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusionmedclip perf",
        description="Measure FusionMedCLIP's speed and memory against the bare backbone and anomalib's baselines.",
    )
    parser.add_argument("--backbone", default="ViT-L-14", help=f"open_clip architecture ({', '.join(BACKBONES)}, ...)")
    parser.add_argument(
        "--feature-layers", type=int, nargs="+", help="1-based feature blocks (default: the paper's relative depths)"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda if available, else cpu)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each subject first")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="inference batch sizes")
    parser.add_argument("--train-batch-sizes", type=int, nargs="+", default=[8], help="training batch sizes")
    parser.add_argument(
        "--baselines",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time anomalib's WinCLIP and PatchCore (slow on CPU)",
    )
    parser.add_argument("--baseline-repeats", type=int, default=3, help="timed rounds of the baseline comparison")
    parser.add_argument("--k-shot", type=int, default=16, help="support images in PatchCore's memory bank")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's); use 1 on a shared, busy CPU, where threads waiting for each "
        "other at every op made the tiny model up to 50x slower",
    )
    parser.add_argument(
        "--loader-workers",
        type=int,
        default=1,
        help="DataLoader workers that synthesise the training step's batches (use several where a step is faster "
        "than synthesising a batch on one core, as on a GPU)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--startup-repeats", type=int, default=5, help="runs of `fusionmedclip --help`")
    parser.add_argument(
        "--min-sample-seconds",
        type=float,
        default=0.2,
        help="repeat fast inference calls within one sample until it lasts this long",
    )
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown-out", type=Path, help="write the Markdown tables to this file")
    parser.add_argument(
        "--readme",
        type=Path,
        help="refresh the block between <!-- perf:start --> and <!-- perf:end --> of this Markdown file",
    )
    parser.add_argument(
        "--render",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="do not measure: render these saved results (one section each) to stdout / --markdown-out / --readme",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fusionmedclip perf``; returns the exit status."""
    args = build_parser().parse_args(argv)
    from fusionmedclip_anomalib.perf.report import MarkersNotFound, refresh_markdown_file, render_results

    if args.render:
        results = [json.loads(path.read_text()) for path in args.render]
    else:
        results = [_measure(args, argv)]
    markdown = render_results(results)
    print(markdown)
    if args.markdown_out:
        args.markdown_out.parent.mkdir(parents=True, exist_ok=True)
        args.markdown_out.write_text(markdown)
    if args.readme:
        try:
            refresh_markdown_file(args.readme, markdown)
        except MarkersNotFound as error:
            print(f"fusionmedclip perf: {args.readme}: {error}", file=sys.stderr)
            return 2
    return 0


def _measure(args: argparse.Namespace, argv: list[str] | None) -> dict:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from fusionmedclip_anomalib.perf.suite import PerfRun, PerfSettings

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("fusionmedclip perf: --device cuda but no CUDA device is available")
    words = sys.argv[1:] if argv is None else ["perf", *argv]
    settings = PerfSettings(
        backbone=args.backbone,
        feature_layers=tuple(args.feature_layers) if args.feature_layers else None,
        device=device,
        precision=args.precision,
        repeats=args.repeats,
        warmup=args.warmup,
        batch_sizes=tuple(args.batch_sizes),
        train_batch_sizes=tuple(args.train_batch_sizes),
        baselines=args.baselines,
        baseline_repeats=args.baseline_repeats,
        k_shot=args.k_shot,
        threads=args.threads,
        loader_workers=args.loader_workers,
        seed=args.seed,
        startup_repeats=args.startup_repeats,
        min_sample_s=args.min_sample_seconds,
        command="fusionmedclip " + " ".join(words),
    )
    return PerfRun(settings, output=args.output, log=lambda line: print(line, file=sys.stderr, flush=True)).run()

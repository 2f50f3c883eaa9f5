"""``fusionmedclip leaderboard DIR``: tables, plots and heatmap galleries from a results folder.

Only argparse is imported at module level so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fusionmedclip leaderboard``."""
    parser = argparse.ArgumentParser(
        prog="fusionmedclip leaderboard",
        description="Aggregate the run records of a results folder (mean ± std over seeds per dataset, k and "
        "model) into leaderboard.csv/.md/.tex, plots/<metric>.png and heatmap galleries. When the folder holds "
        "the config.yaml of its grid, only records of that grid as it is now are used.",
    )
    parser.add_argument("directory", help="results folder written by `fusionmedclip bench`")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--gallery",
        nargs="+",
        metavar="RUN_ID",
        help="draw image | anomaly map | ground truth for these runs (default: one run of the "
        "first model at the largest k)",
    )
    group.add_argument("--no-gallery", action="store_true", help="draw no gallery")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fusionmedclip leaderboard``.

    Args:
        argv: arguments without the program name.

    Returns:
        0 on success, 2 when the folder holds no records or a gallery run is unknown.
    """
    args = build_parser().parse_args(argv)
    from fusionmedclip_anomalib.benchmark.config import ConfigError, load_config
    from fusionmedclip_anomalib.benchmark.leaderboard import write_leaderboard
    from fusionmedclip_anomalib.benchmark.store import ResultStore

    directory = Path(args.directory)
    store = ResultStore(directory)
    if not store.records():
        print(f"fusionmedclip leaderboard: no run records in {directory / 'runs'}", file=sys.stderr)
        return 2
    config = None
    if (directory / "config.yaml").is_file():
        try:
            config = load_config(directory / "config.yaml")
        except ConfigError as error:
            print(f"fusionmedclip leaderboard: ignoring {directory / 'config.yaml'}: {error}", file=sys.stderr)
    gallery = [] if args.no_gallery else args.gallery
    try:
        files = write_leaderboard(store, config, gallery_runs=gallery)
    except FileNotFoundError as error:
        print(f"fusionmedclip leaderboard: {error}", file=sys.stderr)
        return 2
    print(files.markdown)
    if files.stale:
        print(f"({files.stale} record(s) of other or older grids left out.)")
    written = [files.csv, files.markdown_path, files.latex, *files.plots, *files.galleries]
    print("Wrote:\n" + "\n".join(f"  {path}" for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())

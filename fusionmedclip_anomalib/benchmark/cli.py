"""``fusionmedclip bench``: run a benchmark grid, print the leaderboard, optionally gate on a reference.

Exit status: 0 all runs finished (and the gate passed), 1 some runs failed, 2 usage or config error, 3 the
regression gate failed. Only argparse is imported at module level so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED_RUNS, EXIT_USAGE, EXIT_REGRESSION = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fusionmedclip bench``."""
    parser = argparse.ArgumentParser(
        prog="fusionmedclip bench",
        description="Run models x datasets x k x seeds under one protocol (seeded, one test pass with the final "
        "weights, metrics on raw scores at one resolution) and write a leaderboard. Finished runs are kept: "
        "running the same config again resumes where it stopped.",
        epilog="Exit status: 0 ok, 1 some runs failed, 2 usage/config error, 3 regression gate failed.",
    )
    parser.add_argument(
        "config",
        nargs="?",
        default=None,
        help="benchmark YAML, or a packaged config name: demo, ci, paper, ablation (default: demo)",
    )
    parser.add_argument(
        "-o", "--output", help="results folder (default: the config's 'output', else results/bench/NAME)"
    )
    parser.add_argument(
        "--runner",
        choices=("local", "ray"),
        default="local",
        help="local: serial in this process (default); ray: one Ray task per run",
    )
    parser.add_argument(
        "--ray-address", default=None, help="Ray cluster to join (default: RAY_ADDRESS or a new local instance)"
    )
    parser.add_argument(
        "--check",
        metavar="REFERENCE.csv",
        help="after the grid, compare the leaderboard with this reference leaderboard.csv",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        help="allowed drop of a mean for --check, absolute in metric units (0.02 = 2 points)",
    )
    parser.add_argument("--list", action="store_true", help="print the grid's runs and their status; run nothing")
    return parser


def quiet_third_party_output() -> None:
    """Keep the console to progress lines and the leaderboard; run warnings are kept in the run records."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TQDM_DISABLE", "1")
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    # lightning sets its loggers to INFO when imported (also under the standalone name lightning_fabric, which it
    # imports lazily), so import them before lowering them
    import lightning.pytorch  # noqa: F401

    try:
        import lightning_fabric  # noqa: F401
    except ImportError:
        pass

    names = ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric", "anomalib", "open_clip", "timm")
    for name in (*names, None):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fusionmedclip bench``.

    Args:
        argv: arguments without the program name.

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    from fusionmedclip_anomalib.benchmark.config import ConfigError, load_config
    from fusionmedclip_anomalib.benchmark.store import ResultStore

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"fusionmedclip bench: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.check and not Path(args.check).is_file():
        print(f"fusionmedclip bench: reference {args.check} does not exist", file=sys.stderr)
        return EXIT_USAGE
    output = Path(args.output or config.output or f"results/bench/{config.name}")
    store = ResultStore(output)
    specs = config.runs()
    if args.list:
        for spec in specs:
            record = store.load(spec.run_id)
            status = (
                "finished"
                if store.is_finished(spec)
                else (
                    "stale"
                    if record and record.get("spec_hash") != spec.spec_hash
                    else (record or {}).get("status", "to run")
                )
            )
            print(f"{spec.run_id}\t{status}")
        return EXIT_OK

    quiet_third_party_output()
    from fusionmedclip_anomalib.benchmark.runners import LocalRunner, RayRunner, run_grid

    if args.runner == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            print(
                "fusionmedclip bench: --runner ray needs Ray: pip install 'fusionmedclip-anomalib[ray]'",
                file=sys.stderr,
            )
            return EXIT_USAGE
        runner = RayRunner(address=args.ray_address)
    else:
        runner = LocalRunner()
    store.save_config(Path(config.source).read_text() if config.source else "")
    print(f"fusionmedclip bench: {config.name} ({config.source}) -> {output}", file=sys.stderr)
    records = run_grid(specs, store, runner)

    from fusionmedclip_anomalib.benchmark.leaderboard import write_leaderboard

    files = write_leaderboard(store, config, records=records)
    print(files.markdown)
    print(f"Results in {output}/:")
    print(f"  tables   {files.csv.name}, {files.markdown_path.name}, {files.latex.name}")
    print(f"  records  runs/*.json ({len(specs)} runs), support sets support/*.json")
    if files.plots:
        print(f"  plots    {', '.join(str(p.relative_to(output)) for p in files.plots)}")
    if files.galleries:
        print(f"  gallery  {', '.join(str(p.relative_to(output)) for p in files.galleries)}")

    status = EXIT_OK
    failed = [r for r in records if r is None or r.get("status") != "ok"]
    if failed:
        print(f"\n{len(failed)} run(s) failed:", file=sys.stderr)
        for record in failed:
            error = (record or {}).get("error") or {}
            run_id = (record or {}).get("run_id", "?")
            print(f"  {run_id}: {error.get('type', 'Error')}: {error.get('message', '')}", file=sys.stderr)
        status = EXIT_FAILED_RUNS
    if args.check:
        from fusionmedclip_anomalib.benchmark.check import check_files

        regressions = check_files(files.csv, args.check, args.tolerance)
        if regressions:
            print(f"\nRegression gate FAILED against {args.check} (tolerance {args.tolerance}):", file=sys.stderr)
            for regression in regressions:
                print(f"  {regression}", file=sys.stderr)
            return EXIT_REGRESSION
        print(f"\nRegression gate passed against {args.check} (tolerance {args.tolerance}).")
    return status


if __name__ == "__main__":
    sys.exit(main())

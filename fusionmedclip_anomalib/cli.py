"""The ``fusionmedclip`` command.

Subcommands live in their own modules and are imported only when called, so ``fusionmedclip --help``
stays fast. Each subcommand module exposes ``main(argv: list[str]) -> int`` and keeps its own
module-level imports light.
"""

from __future__ import annotations

import sys
from importlib import import_module

# name -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("fusionmedclip_anomalib.benchmark.cli", "run a benchmark grid (default: the packaged demo)"),
    "leaderboard": ("fusionmedclip_anomalib.benchmark.leaderboard_cli", "tables and plots from a results folder"),
    "synth": ("fusionmedclip_anomalib.synthesis.cli", "preview anomaly synthesis as a contact sheet"),
    "prepare": ("fusionmedclip_anomalib.data.prepare_cli", "convert raw dataset downloads to the prepared layout"),
    "pretrain": ("fusionmedclip_anomalib.models.rococlip.cli", "stage 1: ROCOCLIP contrastive fine-tuning"),
    "perf": ("fusionmedclip_anomalib.perf", "measure speed and memory against the bare backbone"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: fusionmedclip <command> [options]", "", "commands:"]
    for name, (module, text) in COMMANDS.items():
        if _available(module):
            lines.append(f"  {name:<{width}}  {text}")
    lines += [
        "",
        "Run `fusionmedclip <command> --help` for a command's options.",
        "Train/test/predict/export through anomalib: `anomalib train --model fusionmedclip_anomalib.FusionMedCLIP ...`",
    ]
    return "\n".join(lines)


def _available(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        from fusionmedclip_anomalib import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS or not _available(COMMANDS[name][0]):
        print(f"fusionmedclip: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return int(import_module(COMMANDS[name][0]).main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of ``fusionmedclip pretrain`` (stage 1, ROCOCLIP).

Module-level imports stay light so ``fusionmedclip --help`` is fast; torch and Lightning load inside :func:`main`.

Example:
    fusionmedclip pretrain --data.root /data/roco-dataset --model.backbone ViT-L-14-quickgelu \\
        --model.pretrained openai --output results/rococlip --trainer.devices 4 --trainer.strategy ddp
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run ``fusionmedclip pretrain`` with ``argv`` (without the command name); returns the exit status."""
    import sys

    from fusionmedclip_anomalib.models.rococlip.pretrain import run_pretrain

    return run_pretrain(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())

"""``fusionmedclip prepare``: convert raw dataset downloads into the prepared layout.

Module-level imports stay light (no torch, no anomalib): the command starts in well under a second.

Example:
    $ fusionmedclip prepare busi --source Dataset_BUSI_with_GT.zip --output datasets
    $ fusionmedclip prepare brainmri --source brain_tumor_dataset --output datasets --seed 0
    $ fusionmedclip prepare chexpert --source CheXpert-v1.0-small --output datasets
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["build_parser", "main"]

_EPILOG = """\
Sources (see datasets/<dataset>.md for where to get them and their terms of use):
  brainmri  Kaggle "Brain MRI Images for Brain Tumor Detection": folders yes/ (tumour) and no/ (normal)
  busi      Breast Ultrasound Images: benign/, malignant/, normal/ with '<name>_mask.png' (and '_mask_1.png')
  chexpert  CheXpert: train.csv/valid.csv + images; normal = frontal 'No Finding', abnormal = frontal with a
            positive pathology

The split is deterministic for a given --seed; the defaults give the paper's test counts
(BrainMRI 65/155, BUSI 101/647, CheXpert 250/250) when the source is the paper's. Running the command twice
gives identical files.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fusionmedclip prepare``."""
    parser = argparse.ArgumentParser(
        prog="fusionmedclip prepare",
        description="Convert a raw dataset download (folder or .zip) into the prepared layout "
        "<output>/<name>/{images,samples}.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", choices=("brainmri", "busi", "chexpert"), help="which dataset the source is")
    parser.add_argument("--source", required=True, help="raw download: a folder or a .zip archive")
    parser.add_argument("--output", required=True, help="root folder of prepared datasets")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default: 0)")
    parser.add_argument("--name", default=None, help="dataset folder name under --output (default: the dataset)")
    parser.add_argument("--test-normal", type=int, default=None, help="normal test images (default: paper rule)")
    parser.add_argument(
        "--test-abnormal",
        type=int,
        default=None,
        help="abnormal test images (default: all for brainmri/busi, 250 for chexpert)",
    )
    parser.add_argument("--max-train", type=int, default=None, help="cap on the normal train pool (default: all)")
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="skip corrupt files, masks without images and abnormal images without masks "
        "(they are reported) instead of stopping",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an existing folder that is not a prepared dataset"
    )
    parser.add_argument("--verbose", action="store_true", help="list every skipped file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 1 preparation error, 2 usage error)."""
    args = build_parser().parse_args(argv)
    from .prepare import PrepareError, prepare_dataset

    try:
        report = prepare_dataset(
            args.dataset,
            args.source,
            args.output,
            seed=args.seed,
            name=args.name,
            test_normal=args.test_normal,
            test_abnormal=args.test_abnormal,
            max_train=args.max_train,
            lenient=args.lenient,
            force=args.force,
        )
    except (PrepareError, FileNotFoundError, ValueError) as error:
        print(f"fusionmedclip prepare: error: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines(verbose=args.verbose)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

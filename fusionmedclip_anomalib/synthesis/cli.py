"""``fusionmedclip synth``: preview anomaly synthesis on your own images as a contact-sheet PNG.

Module-level imports stay light (argparse only) so the command starts fast; numpy, OpenCV, Pillow and
matplotlib are imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".webp")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusionmedclip synth",
        description="Write a contact sheet (normal | synthesised | mask) of anomaly-synthesis pairs made from "
        "your normal images. All given images are also the support set that structural tasks take patches from.",
    )
    parser.add_argument("--images", required=True, type=Path, help="an image file or a folder (searched recursively)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the PNG (created if missing)")
    parser.add_argument("--preset", default="fusionmedclip", help="task weights: fusionmedclip (default) or mediclip")
    parser.add_argument(
        "--task", default=None, help="preview one task only (e.g. guided_deformation); overrides --preset"
    )
    parser.add_argument("--n", type=int, default=16, help="number of pairs (rows), default 16")
    parser.add_argument("--seed", type=int, default=0, help="random seed, default 0")
    parser.add_argument("--size", type=int, default=224, help="images are resized to size x size pixels, default 224")
    return parser


def find_images(path: Path) -> list[Path]:
    """The image file itself, or every image file under a folder, sorted."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_grey(path: Path, size: int):
    """Read an image as grey uint8 resized to size x size, or None if it cannot be decoded."""
    import cv2
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as handle:
            image = ImageOps.exif_transpose(handle)
            array = np.asarray(image)
            if array.dtype != np.uint8:  # 16-bit / float: stretch to 8 bits rather than clip
                array = array.astype(np.float64)
                low, high = float(array.min()), float(array.max())
                array = ((array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)).astype(np.uint8)
                image = Image.fromarray(array)
            grey = np.asarray(image.convert("L"))
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA if max(grey.shape) > size else cv2.INTER_LINEAR)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    error = _check_args(args)
    if error:
        print(f"fusionmedclip synth: error: {error}", file=sys.stderr)
        return 2

    import numpy as np

    from fusionmedclip_anomalib.synthesis.pool import SynthesisPool
    from fusionmedclip_anomalib.synthesis.preview import write_contact_sheet

    paths = find_images(args.images)
    images = [image for image in (load_grey(path, args.size) for path in paths) if image is not None]
    if not images:
        found = f"{len(paths)} file(s) with an image suffix, none readable" if paths else "no image files"
        print(f"fusionmedclip synth: error: {found} in {args.images} ({', '.join(IMAGE_SUFFIXES)})", file=sys.stderr)
        return 2
    try:
        pool = SynthesisPool(weights={args.task: 1.0} if args.task else args.preset, support=images)
    except ValueError as exc:
        print(f"fusionmedclip synth: error: {exc}", file=sys.stderr)
        return 2

    rng = np.random.default_rng(args.seed)
    originals = [images[row % len(images)] for row in range(args.n)]
    results = [pool.sample(image, rng) for image in originals]
    name = args.task or args.preset
    path = args.out / f"synthesis_{name}_seed{args.seed}.png"
    title = f"{name}: {args.n} pairs from {len(images)} image(s), seed {args.seed}"
    print(write_contact_sheet(originals, results, path, title=title))
    return 0


def _check_args(args: argparse.Namespace) -> str | None:
    if not args.images.exists():
        return f"--images {args.images} does not exist"
    if args.n < 1:
        return f"--n must be at least 1, got {args.n}"
    if args.size < 16:
        return f"--size must be at least 16, got {args.size}"
    return None


if __name__ == "__main__":
    sys.exit(main())

"""A contact sheet of synthesised pairs, so a user can see what the model will learn from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fusionmedclip_anomalib.synthesis.pool import SynthesisResult


def mask_overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """RGB uint8 rendering of a grey image with the (soft) mask tinted red."""
    grey = image.astype(np.float32)
    weight = alpha * np.clip(mask, 0.0, 1.0)
    rgb = np.stack([grey + weight * (255.0 - grey), grey * (1.0 - weight), grey * (1.0 - weight)], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def write_contact_sheet(
    originals: Sequence[np.ndarray], results: Sequence[SynthesisResult], path: str | Path, title: str = ""
) -> Path:
    """Write a PNG with one row per pair: original | synthesised | mask overlay, labelled with the task.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from fusionmedclip_anomalib.synthesis import SynthesisPool
        >>> img = np.random.default_rng(0).integers(40, 200, (32, 32), dtype=np.uint8)
        >>> result = SynthesisPool("mediclip").sample(img, np.random.default_rng(0))
        >>> path = write_contact_sheet([img], [result], os.path.join(tempfile.mkdtemp(), "sheet.png"))
        >>> path.exists()
        True
    """
    from matplotlib.figure import Figure

    if len(originals) != len(results) or not results:
        raise ValueError("need one original per result and at least one row")
    rows = len(results)
    figure = Figure(figsize=(3 * 2.2, rows * 2.3), dpi=100, layout="constrained")
    axes = np.asarray(figure.subplots(rows, 3, squeeze=False))
    for row, (original, result) in enumerate(zip(originals, results)):
        panels = (original, result.image, mask_overlay(result.image, result.mask))
        labels = ("normal", f"{result.task}", f"mask (area {float((result.mask >= 0.5).mean()):.1%})")
        for column, (panel, label) in enumerate(zip(panels, labels)):
            axis = axes[row, column]
            axis.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            axis.set_title(label, fontsize=9)
            axis.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path

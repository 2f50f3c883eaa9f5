"""Identity: the normal image itself, so the model keeps seeing clean tissue with an empty target."""

from __future__ import annotations

import numpy as np

from fusionmedclip_anomalib.synthesis.greyscale import to_grey
from fusionmedclip_anomalib.synthesis.tasks.base import SynthesisTask, check_rng, unchanged


class Identity(SynthesisTask):
    """Return the (grey) image unchanged with an all-zero mask.

    Example:
        >>> import numpy as np
        >>> img = np.full((8, 8), 7, np.uint8)
        >>> out, mask = Identity()(img, np.random.default_rng(0))
        >>> bool((out == img).all()), float(mask.max())
        (True, 0.0)
    """

    name = "identity"

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator, foreground: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        check_rng(rng)
        return unchanged(to_grey(image))

    def synthesise(
        self, image: np.ndarray, foreground: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return unchanged(image)

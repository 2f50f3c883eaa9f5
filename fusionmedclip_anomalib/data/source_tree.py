"""Read-only view of a raw download: a folder or a zip archive, addressed by POSIX paths.

Dataset archives carry junk (``__MACOSX/`` resource forks, ``.DS_Store``, ``Thumbs.db``); those are hidden here
because they are not part of any dataset. Everything else is listed, sorted, so that preparation is
deterministic whatever order the file system or the archive returns.

Example:
    >>> tree = SourceTree.open("Dataset_BUSI.zip")  # doctest: +SKIP
    >>> [path for path in tree.files() if path.endswith("_mask_1.png")][:1]
    ['Dataset_BUSI_with_GT/benign/benign (100)_mask_1.png']
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["SourceTree"]

_JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})


def _is_junk(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return any(part == "__MACOSX" or part.startswith("._") for part in parts) or parts[-1].lower() in _JUNK_NAMES


class SourceTree:
    """Files of a raw dataset download (folder or ``.zip``), listed by POSIX path relative to its top.

    Args:
        location: A folder or a zip file.

    Example:
        >>> tree = SourceTree.open("brain_tumor_dataset")  # doctest: +SKIP
        >>> tree.read_bytes("yes/Y1.jpg")[:3]
        b'\\xff\\xd8\\xff'
    """

    def __init__(self, location: str | Path) -> None:
        self.location = Path(location).expanduser()
        self._zip: zipfile.ZipFile | None = None
        if self.location.is_dir():
            self._files = sorted(
                path.relative_to(self.location).as_posix() for path in self.location.rglob("*") if path.is_file()
            )
        elif self.location.is_file() and zipfile.is_zipfile(self.location):
            self._zip = zipfile.ZipFile(self.location)
            self._files = sorted(info.filename for info in self._zip.infolist() if not info.is_dir())
        elif self.location.exists():
            msg = f"--source must be a folder or a .zip archive: {self.location}"
            raise ValueError(msg)
        else:
            msg = f"source not found: {self.location}"
            raise FileNotFoundError(msg)
        self._files = [path for path in self._files if not _is_junk(path)]
        self._set = set(self._files)

    @classmethod
    def open(cls, location: str | Path) -> SourceTree:
        """Open a folder or zip archive."""
        return cls(location)

    def files(self) -> list[str]:
        """All dataset files, sorted."""
        return list(self._files)

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a file of the tree."""
        return path in self._set

    def read_bytes(self, path: str) -> bytes:
        """Raw bytes of a file (raises ``FileNotFoundError`` naming it)."""
        if path not in self._set:
            msg = f"{path} is not in {self.location}"
            raise FileNotFoundError(msg)
        if self._zip is not None:
            return self._zip.read(path)
        return (self.location / path).read_bytes()

    def display(self, path: str) -> str:
        """How to name a file in messages: ``<source>/<path>`` (or ``<archive>!<path>``)."""
        return f"{self.location}!{path}" if self._zip is not None else str(self.location / path)

    def close(self) -> None:
        """Close the archive, if any."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> SourceTree:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

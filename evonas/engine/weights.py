"""The run folder's weight store (``inherit:``): each evaluated genome's trained weights, as safetensors.

``RUN_DIR/weights/<key>.safetensors`` holds the ``state_dict`` of the last network trained for genome ``key``
(safetensors: plain tensors, never a pickle). Workers write a file whole (a temporary file, then a rename) and
read their parent's by key; the run's process keeps the folder under its bound, dropping the oldest files first
(:meth:`WeightStore.enforce`), and each save makes room first. A file that is missing or damaged reads as
``None``: the child then trains from scratch.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

__all__ = ["WEIGHTS_DIR", "WeightStore"]

#: the weight store's folder in a run folder
WEIGHTS_DIR = "weights"
_SUFFIX = ".safetensors"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")


class WeightStore:
    """Trained weights by genome key in ``folder``, at most ``max_bytes`` in all (``None``: no bound)."""

    def __init__(self, folder: str | Path, max_bytes: int | None = None) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        """The file of genome ``key`` (a key that is not a plain name is hashed)."""
        name = key if _PLAIN_KEY.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()[:32]
        return self.folder / f"{name}{_SUFFIX}"

    def save(self, key: str, state: Mapping[str, Any]) -> bool:
        """Write ``state`` (name -> tensor) as genome ``key``'s weights, whole or not at all; whether it was written
        (a full disk or an unwritable folder costs the children their inheritance, never the evaluation)."""
        from safetensors.torch import save_file  # torch: only processes that train import it

        if self.max_bytes is not None and sum(v.numel() * v.element_size() for v in state.values()) > self.max_bytes:
            return False  # larger than the whole store may hold: its children train from scratch
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            os.close(fd)
            save_file({k: v.contiguous() for k, v in state.items()}, tmp)
            self.enforce(reserve=os.path.getsize(tmp))  # room for it first: the oldest files go
            os.replace(tmp, self.path(key))
            return True
        except (OSError, RuntimeError, ValueError):
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            return False

    def load(self, key: str) -> dict[str, Any] | None:
        """Genome ``key``'s weights (tensors on the host), or ``None`` if there are none or they cannot be read."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(self.path(key)))
        except (OSError, SafetensorError, RuntimeError, ValueError):
            return None

    def files(self) -> list[tuple[float, int, Path]]:
        """``(modified time, size, path)`` of each stored file, oldest first."""
        out = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return []
        for entry in entries:
            if entry.name.endswith(_SUFFIX) and entry.is_file(follow_symlinks=False):
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                out.append((st.st_mtime, st.st_size, Path(entry.path)))
        return sorted(out)

    def size(self) -> int:
        """The bytes the stored files take."""
        return sum(size for _, size, _ in self.files())

    def enforce(self, reserve: int = 0) -> int:
        """Drop the oldest files until the store with ``reserve`` more bytes is within its bound; the number
        dropped. :meth:`save` makes room for each file before it appears; several workers saving at once may pass
        the bound by a file each until the run's process trims the store after their results."""
        if self.max_bytes is None:
            return 0
        files = self.files()
        total = sum(size for _, size, _ in files)
        dropped = 0
        for _, size, path in files:
            if total + reserve <= self.max_bytes:
                break
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                continue
            total -= size
            dropped += 1
        return dropped

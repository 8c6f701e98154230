"""Where finalized recordings live. One interface; the directory backend is the default.

Keys are relative POSIX paths chosen by the finalizer (date / manager / call), so a
retried finalize writes the same key again: one copy, never two.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Protocol


class StoreError(OSError):
    """The store could not take or give a file (disk full, permissions)."""


class Store(Protocol):
    name: str

    def put(self, key: str, source: Path) -> None: ...
    def path(self, key: str) -> Path | None: ...
    def delete(self, key: str) -> bool: ...
    def exists(self, key: str) -> bool: ...


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise ValueError(f"unsafe store key {key!r}")


class DirectoryStore:
    """Files under one directory; writes are atomic (temporary file, fsync, rename)."""

    name = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _target(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    def put(self, key: str, source: Path) -> None:
        target = self._target(key)
        tmp = target.with_name(f".{target.name}.partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with source.open("rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreError(exc.errno, f"store {self.root}: {exc.strerror}") from exc

    def path(self, key: str) -> Path | None:
        target = self._target(key)
        return target if target.is_file() else None

    def exists(self, key: str) -> bool:
        return self.path(key) is not None

    def delete(self, key: str) -> bool:
        target = self._target(key)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        for parent in target.parents:  # drop emptied date/manager folders
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:
                break
        return True

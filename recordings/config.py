"""Settings of the recordings pipeline (telecrm fills them from its ``TELECRM_RECORDINGS_*``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RecordingsConfig:
    store_dir: Path  # root of the directory backend
    audio_format: str = "opus"  # opus (Ogg) or mp3
    settle_seconds: float = 2.0  # a file untouched this long (and with a closed header) is done
    max_attempts: int = 6  # then the call is marked failed for a supervisor
    retry_base_seconds: float = 5.0  # backoff: base * 2**attempt
    retention_days: int = 365  # teams without their own policy
    workers: int = 2  # concurrent ffmpeg conversions (one per core)
    store_url: str = ""  # s3://bucket/prefix for the shared backend; else store_dir
    s3_endpoint_url: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = field(default="", repr=False)
    s3_region: str = "us-east-1"
    s3_ranged_get: bool = True

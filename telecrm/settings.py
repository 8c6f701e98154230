"""Settings from ``TELECRM_*`` environment variables and an optional TOML file.

Precedence: command-line flags, then the environment, then the TOML file named
by ``TELECRM_CONFIG``, then the defaults below. Every field is listed by
``telecrm --help``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from crm_core.errors import DomainError


class SettingsError(DomainError):
    """A setting has a value the CRM cannot use (``settings.*``)."""


def _field(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _field(Path("data"), "where the SQLite database, AMI captures and "
                            "recordings live")
    database_url: str = _field("", "SQLAlchemy URL; default: SQLite file in the data directory; "
                               "postgresql://user:pass@host/db for PostgreSQL")
    redis_url: str = _field("", "redis://host:port/db for pub/sub and job queues when scaling "
                            "out; default: in-process")
    ami_host: str = _field("127.0.0.1", "Asterisk AMI host")
    ami_port: int = _field(5038, "Asterisk AMI port")
    ami_user: str = _field("telecrm", "AMI user (manager.conf section)")
    ami_secret: str = _field("", "AMI secret")
    recordings_source: Path = _field(Path("/var/spool/asterisk/monitor"),
                                     "where Asterisk's MixMonitor writes (read by the CRM)")
    recordings_store: str = _field("", "where finalized recordings are stored; "
                                   "unset: the data directory's recordings/")
    recordings_format: str = _field("opus", "stored audio format: opus or mp3")
    recordings_retention_days: int = _field(365, "days recordings are kept for teams "
                                            "without their own policy")
    recordings_workers: int = _field(2, "concurrent recording conversions (one per core)")
    recordings_s3_endpoint: str = _field("", "S3 server URL when TELECRM_RECORDINGS_STORE is "
                                         "s3://bucket/prefix (unset: AWS)")
    recordings_s3_access_key: str = _field("", "S3 access key of the recordings store")
    recordings_s3_secret_key: str = _field("", "S3 secret key of the recordings store")
    recordings_s3_region: str = _field("us-east-1", "S3 region of the recordings store")
    recordings_s3_ranged_get: bool = _field(True, "false for S3 servers whose ranged GETs "
                                            "are unreliable (the CRM then cuts ranges itself)")
    timezone: str = _field("Europe/Moscow", "timezone of the working day")
    phone_region: str = _field("RU", "default region for phone numbers written without a "
                               "country code")
    http_host: str = _field("127.0.0.1", "web app bind address")
    http_port: int = _field(8080, "web app port")
    cookie_secure: str = _field("auto", "Secure flag of the session cookie: auto (when served "
                                "over HTTPS), true or false")
    vosk_model: str = _field("", "Vosk model directory for transcription (speech/README.md); "
                             "default: an installed vosk-model-* package")
    speech_threads: int = _field(1, "recognizers 'telecrm serve' runs when TELECRM_VOSK_MODEL "
                                 "is set (0: none; run 'telecrm worker' instead)")
    log_level: str = _field("INFO", "DEBUG, INFO, WARNING or ERROR")
    trunks: str = _field("", "carrier trunks by endpoint name, comma-separated (carrier,"
                         "beeline or PJSIP/carrier): a trunk named by digits is then never "
                         "taken for a manager's phone")
    ct_rate_per_minute: int = _field(120, "call tracking: requests per minute one client IP "
                                     "may make to the public lease endpoint")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'telecrm.db').resolve()}"

    @property
    def recordings_store_dir(self) -> Path:
        if self.recordings_store and not self.recordings_store.startswith("s3://"):
            return Path(self.recordings_store).expanduser()
        return self.data_dir / "recordings"

    @property
    def trunk_names(self) -> frozenset[str]:
        """``TELECRM_TRUNKS`` as endpoint names (``carrier``) or ``TECH/name`` (upper tech)."""
        names = set()
        for item in self.trunks.replace(";", ",").split(","):
            tech, slash, name = item.strip().partition("/")
            if slash and tech and name:
                names.add(f"{tech.upper()}/{name}")
            elif item.strip():
                names.add(item.strip())
        return frozenset(names)

    @property
    def capture_dir(self) -> Path:
        return self.data_dir / "ami"

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    @classmethod
    def load(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        config_file = env.get("TELECRM_CONFIG")
        if config_file:
            try:
                raw.update(tomllib.loads(Path(config_file).read_text("utf-8")))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError("settings.file_unreadable",
                                    f"cannot read settings file {config_file}: {exc}",
                                    path=config_file, reason=str(exc)) from exc
        for f in fields(cls):
            key = f"TELECRM_{f.name.upper()}"
            if key in env:
                raw[f.name] = env[key]
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in known:
                raise SettingsError("settings.unknown", f"unknown setting {name!r}", name=name)
            values[name] = _coerce(name, known[name].default, value)
        return cls(**values)


def _coerce(name: str, default: Any, value: Any) -> Any:
    try:
        if isinstance(default, bool):
            return str(value).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, Path):
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError("settings.bad_value",
                            f"setting {name} has an unusable value {value!r}",
                            name=f"TELECRM_{name.upper()}", value=value) from exc


def describe() -> str:
    """The settings table printed by ``telecrm --help``."""
    lines = ["settings (environment variables; TELECRM_CONFIG names an optional TOML file):"]
    for f in fields(Settings):
        lines.append(f"  TELECRM_{f.name.upper():<20} {f.metadata['help']} "
                     f"(default: {f.default or 'unset'})")
    return "\n".join(lines)

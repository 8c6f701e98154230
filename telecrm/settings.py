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
    data_dir: Path = _field(Path("data"), "где лежат база SQLite, записи событий AMI и "
                            "записи разговоров")
    database_url: str = _field("", "адрес SQLAlchemy; по умолчанию — файл SQLite в папке данных; "
                               "postgresql://user:pass@host/db для PostgreSQL")
    redis_url: str = _field("", "redis://host:port/db для событий и очередей задач на "
                            "нескольких машинах; по умолчанию — внутри процесса")
    ami_host: str = _field("127.0.0.1", "адрес AMI Asterisk")
    ami_port: int = _field(5038, "порт AMI Asterisk")
    ami_user: str = _field("telecrm", "пользователь AMI (раздел manager.conf)")
    ami_secret: str = _field("", "пароль AMI")
    recordings_source: Path = _field(Path("/var/spool/asterisk/monitor"),
                                     "куда пишет MixMonitor Asterisk (CRM читает оттуда)")
    recordings_store: str = _field("", "где хранятся готовые записи; "
                                   "по умолчанию — recordings/ в папке данных")
    recordings_format: str = _field("opus", "формат хранимых записей: opus или mp3")
    recordings_retention_days: int = _field(365, "сколько дней хранятся записи отделов "
                                            "без своего срока")
    recordings_workers: int = _field(2, "сколько записей сжимается одновременно (по одной на ядро)")
    recordings_s3_endpoint: str = _field("", "адрес сервера S3, если TELECRM_RECORDINGS_STORE — "
                                         "s3://bucket/prefix (по умолчанию — AWS)")
    recordings_s3_access_key: str = _field("", "ключ доступа S3 хранилища записей")
    recordings_s3_secret_key: str = _field("", "секретный ключ S3 хранилища записей")
    recordings_s3_region: str = _field("us-east-1", "регион S3 хранилища записей")
    recordings_s3_ranged_get: bool = _field(True, "false для серверов S3, у которых ненадёжны "
                                            "запросы части файла (тогда CRM режет сама)")
    timezone: str = _field("Europe/Moscow", "часовой пояс рабочего дня")
    service_level_seconds: int = _field(20, "табло: звонок очереди, отвеченный за столько "
                                        "секунд, идёт в уровень обслуживания")
    phone_region: str = _field("RU", "страна по умолчанию для номеров, записанных без "
                               "кода страны")
    http_host: str = _field("127.0.0.1", "адрес веб-приложения")
    http_port: int = _field(8080, "порт веб-приложения")
    cookie_secure: str = _field("auto", "флаг Secure у cookie сеанса: auto (если работает "
                                "по HTTPS), true или false")
    vosk_model: str = _field("", "папка модели Vosk для расшифровки (speech/README.md); "
                             "по умолчанию — установленный пакет vosk-model-*")
    speech_threads: int = _field(1, "сколько распознавателей запускает 'telecrm serve', если "
                                 "задан TELECRM_VOSK_MODEL (0 — ни одного; тогда 'telecrm worker')")
    live_prompts: bool = _field(False, "живые подсказки во время разговора: Asterisk передаёт "
                                "обе стороны звонка, CRM распознаёт их и отмечает этапы "
                                "сценария в карточке (speech/README.md)")
    live_listen: str = _field("127.0.0.1:9092", "адрес host:port, на котором 'telecrm serve' "
                              "принимает звук звонков для живых подсказок (AudioSocket)")
    live_advertise: str = _field("", "адрес host:port CRM, который сообщается Asterisk для "
                                 "живых подсказок; по умолчанию — TELECRM_LIVE_LISTEN")
    live_threads: int = _field(2, "потоков распознавания живых подсказок (каждый — до одного "
                               "ядра)")
    log_level: str = _field("INFO", "DEBUG, INFO, WARNING или ERROR")
    log_format: str = _field("text", "формат журнала: text (строка для человека) или json "
                             "(один объект JSON на строку: time, level, logger, message, "
                             "exception)")
    db_pool_size: int = _field(5, "соединений с PostgreSQL на процесс в обычной работе; в "
                               "пике процесс открывает до трёх раз больше и держит их "
                               "открытыми (на SQLite не влияет)")
    metrics_token: str = _field("", "токен сборщика метрик: с заголовком «Authorization: "
                                "Bearer <токен>» /metrics отдаётся без входа; по умолчанию — "
                                "только администратору, вошедшему в систему")
    trunks: str = _field("", "транки операторов по имени, через запятую (carrier,"
                         "beeline или PJSIP/carrier): транк с именем из цифр тогда не "
                         "примут за телефон менеджера")
    dial_context: str = _field("from-managers", "контекст диалплана, в котором АТС набирает "
                               "номер после ответа менеджера при звонке из CRM (наша "
                               "конфигурация — from-managers; FreePBX — from-internal)")
    ring_seconds: int = _field(30, "сколько секунд звонит телефон менеджера при звонке из CRM: "
                               "не снял трубку за это время — звонок не состоялся, и CRM "
                               "сообщает ему об этом")
    password_hashing: str = _field("strong", "стойкость хешей паролей (Argon2id): strong — "
                                   "64 МиБ и 3 прохода, light — 19 МиБ и 2 прохода (минимум "
                                   "OWASP, вход в 6 раз дешевле для процессора)")
    template_cache: str = _field("", "папка, где хранятся скомпилированные шаблоны страниц "
                                 "между запусками; по умолчанию — ~/.cache/telecrm/templates "
                                 "(или в $XDG_CACHE_HOME); off — не хранить")
    trusted_proxies: str = _field("", "адреса обратных прокси (через запятую, можно сети "
                                  "10.0.0.0/8): только от них берётся адрес клиента из "
                                  "X-Forwarded-For; по умолчанию — никому не верить")
    ct_new_visits_per_minute: int = _field(20, "коллтрекинг: сколько новых визитов в минуту "
                                           "с одного адреса (IPv6 — с одной сети /64) получают "
                                           "номер из пула (сверх — как бот, без номера)")
    webhooks_allow_private: bool = _field(False, "вебхуки: разрешить адреса в локальной сети "
                                          "(127.0.0.1, 10.0.0.0/8, 192.168.0.0/16 и т. п.); по "
                                          "умолчанию CRM отправляет события только в интернет")
    ct_rate_per_minute: int = _field(120, "коллтрекинг: сколько запросов в минуту один адрес "
                                     "(IPv6 — одна сеть /64) может сделать к публичной "
                                     "выдаче номеров")
    conversions_every: int = _field(900, "конверсии: как часто (в секундах) 'telecrm serve' "
                                    "отправляет новые звонки и сделки в Яндекс Метрику и "
                                    "Google Ads")
    conversions_retry_ms: int = _field(2000, "конверсии: первая пауза (мс) перед повтором "
                                       "неудачной отправки, дальше вдвое больше")
    metrica_api_url: str = _field("https://api-metrika.yandex.net", "конверсии: адрес API "
                                  "управления Яндекс Метрики")
    google_ads_api_url: str = _field("https://googleads.googleapis.com", "конверсии: адрес "
                                     "Google Ads API")
    ct_callback_hours: str = _field("", "обратный звонок с сайта: рабочие часы (ЧЧ:ММ-ЧЧ:ММ), "
                                    "только если они не те, что в календаре рабочего "
                                    "времени (/talktime/settings); по умолчанию — "
                                    "из календаря; вне их заявка ждёт утра")
    ct_callback_days: str = _field("", "обратный звонок с сайта: рабочие дни недели (1 — "
                                   "понедельник, 7 — воскресенье; «1-5», «1-5,7»), только если "
                                   "они не те, что в календаре; по умолчанию — из календаря "
                                   "(праздники — всегда из календаря)")
    ct_leads_per_minute: int = _field(5, "коллтрекинг: сколько заявок и обратных звонков в "
                                      "минуту принимается с одного адреса (IPv6 — с одной "
                                      "сети /64)")

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
        if values.get("password_hashing", "strong") not in ("strong", "light"):
            raise SettingsError("settings.bad_value", "TELECRM_PASSWORD_HASHING is strong or light",
                                name="TELECRM_PASSWORD_HASHING", value=values["password_hashing"])
        if values.get("db_pool_size", 5) < 1:
            raise SettingsError("settings.bad_value", "TELECRM_DB_POOL_SIZE is 1 or more",
                                name="TELECRM_DB_POOL_SIZE", value=values["db_pool_size"])
        if values.get("log_format", "text") not in ("text", "json"):
            raise SettingsError("settings.bad_value", "TELECRM_LOG_FORMAT is text or json",
                                name="TELECRM_LOG_FORMAT", value=values["log_format"])
        for key in ("live_listen", "live_advertise"):
            address = values.get(key, "")
            if address and split_address(address) is None:
                raise SettingsError("settings.bad_value", f"TELECRM_{key.upper()} is host:port",
                                    name=f"TELECRM_{key.upper()}", value=address)
        return cls(**values)


def split_address(address: str) -> tuple[str, int] | None:
    """``host:port`` (``[::1]:9092`` too) as a pair; None when it is not one."""
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        return None
    return host, int(port)


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


def _default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value != "" else "не задано"


def describe() -> str:
    """The settings table printed by ``telecrm --help``."""
    lines = ["настройки (переменные окружения; TELECRM_CONFIG — необязательный файл TOML):"]
    for f in fields(Settings):
        said = "по умолчанию" in f.metadata["help"]  # the help names the default itself
        lines.append(f"  TELECRM_{f.name.upper():<20} {f.metadata['help']}"
                     + ("" if said else f" (по умолчанию: {_default(f.default)})"))
    return "\n".join(lines)

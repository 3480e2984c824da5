"""Configuration: every knob is a ``CXSTREAM_*`` environment variable.

One place, validated at start-up by pydantic-settings. A bad value stops the
process with :func:`describe_error`'s one-line message naming the variable.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CXSTREAM_"


class TopicNames(BaseSettings):
    """Topic names of the wire contract (each overridable)."""

    model_config = SettingsConfigDict(env_prefix="CXSTREAM_TOPIC_", extra="ignore")

    faults: str = "cx.network.faults"
    quality: str = "cx.service.quality"
    customers: str = "cx.customers"
    scores: str = "cx.scores"
    care: str = "cx.triggers.care"
    marketing: str = "cx.triggers.marketing"
    deadletter: str = "cx.deadletter"
    fault_impact: str = "cx.fault_impact"  # who each fault hurts (issue 7; not in the contract's table)


class Settings(BaseSettings):
    """Everything the worker, demo and simulator read from the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # --- Kafka -----------------------------------------------------------
    broker: str = Field(
        default="",
        description="Kafka bootstrap servers, e.g. kafka://host1:9092,host2:9092. "
        "Empty: the demo starts the embedded broker.",
    )
    app_id: str = Field(default="cxstream", description="Consumer group and state prefix.")
    partitions: int = Field(default=4, ge=1, description="Partitions for topics cxstream creates.")
    replication_factor: int = Field(default=1, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = Field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    session_timeout_s: float = Field(
        default=30.0, gt=0, description="Consumer session timeout; the demo and tests use 6."
    )
    heartbeat_interval_s: float = Field(default=3.0, gt=0)

    # --- processing ------------------------------------------------------
    source: str = Field(
        default="urn:cxstream:default",
        description="CloudEvents source: an absolute URI naming this deployment.",
    )
    rules: Path | None = Field(default=None, description="Rules file (YAML); default: shipped rules.")
    flush_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="Scores and state are written once per interval."
    )
    half_life_s: float = Field(
        default=1800.0, gt=0, description="Event-time half-life of a score penalty."
    )
    allowed_lateness_s: float = Field(
        default=900.0, ge=0,
        description="A quality record older than the customer's latest event by more is 'late'.",
    )
    batch_max: int = Field(default=500, ge=1, description="Records handed to the domain at once.")
    hot_idle_s: float = Field(
        default=10.0, ge=0, le=3600,
        description="A customer unused this long goes back to its compact stored form (~200 B).",
    )
    hot_max: int = Field(
        default=100_000, ge=0,
        description="At most this many customers kept ready in memory (~1 KB each); beyond, least recent first.",
    )
    fetch_max_wait_ms: int = Field(
        default=100, ge=1, le=30000,
        description="Longest the broker may hold a fetch when little data is waiting (bounds latency).",
    )

    # --- bounds (contract v2) -------------------------------------------
    max_future_s: float = Field(
        default=900.0, ge=0,
        description="An event, raise or change time more than this ahead of the worker's clock is invalid input.",
    )
    max_record_bytes: int = Field(
        default=262144, ge=1024, le=900_000,
        description="A record larger than this is invalid input (its dead letter keeps the first 4096 bytes).",
    )
    alarm_max_age_s: float = Field(
        default=7 * 86400.0, gt=0,
        description="An alarm active without a clear for longer is expired (counted in cxstream_bounded_total).",
    )
    erased_retention_s: float = Field(
        default=30 * 86400.0, ge=0,
        description="How long an erased customer id is remembered (its quality records dropped, outcome erased).",
    )
    broker_lost_s: float = Field(
        default=10.0, gt=0,
        description="/readyz answers 503 after this long without an answer from the broker.",
    )
    shutdown_timeout_s: float = Field(
        default=15.0, gt=0, le=600,
        description="Longest a stop (SIGTERM) waits for the final flush; past it the worker exits "
        "without committing, so the next owner reads the tail again.",
    )

    # --- operations ------------------------------------------------------
    web_port: int = Field(default=6066, ge=1, le=65535)
    web_host: str = "0.0.0.0"
    web_advertised_url: str | None = Field(
        default=None,
        description="How the other workers reach this one's web port, to route GET /customers/{id} "
        "to the worker that owns the customer (e.g. http://10.0.3.7:6066 or a pod's DNS name). "
        "Default: http://<web_host>:<web_port> when web_host is one address, else "
        "http://<hostname>:<web_port>.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_dir: Path = Field(default=Path("/tmp/cxstream"), description="faust's data directory.")
    store: Literal["memory", "rocksdb"] = "memory"
    standby_replicas: int = Field(
        default=1, ge=0, description="Workers that keep a warm copy of each partition's state (faster failover)."
    )
    changelog_seal: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="After each state flush write a one-record batch per changelog partition, for "
        "brokers whose high watermark stops at the last batch's first record (Tansu); auto: on when a "
        "probe write at start-up shows the broker does that.",
    )
    create_topics: bool = Field(default=True, description="Create missing contract topics at start-up.")

    # --- webhook delivery (`cxstream deliver`) -----------------------------
    routes: Path | None = Field(default=None, description="Webhook routes file (YAML) for `cxstream deliver`.")
    deliver_web_port: int = Field(default=6068, ge=1, le=65535,
                                  description="Web port of `cxstream deliver` (/healthz, /readyz, /metrics).")
    deliver_deadletter_topic: str = Field(default="cx.deadletter.delivery",
                                          description="Where `cxstream deliver` puts events it could not deliver.")
    deliver_max_pending: int = Field(default=20000, ge=1,
                                     description="Events `cxstream deliver` holds unfinished before it pauses reading.")

    topics: TopicNames = Field(default_factory=TopicNames)

    @field_validator("source")
    @classmethod
    def _absolute_uri(cls, value: str) -> str:
        scheme, sep, rest = value.partition(":")
        if not sep or not scheme.isascii() or not scheme[:1].isalpha() or not rest:
            raise ValueError("must be an absolute URI such as urn:cxstream:prod-eu1")
        return value

    @field_validator("web_advertised_url")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:  # unset or empty: the default (see advertised_url)
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"is not a URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host, e.g. http://cxstream-0.cxstream:6066")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")

    @field_validator("broker")
    @classmethod
    def _broker_list(cls, value: str) -> str:
        for server in bootstrap_servers(value).split(","):
            if server and ":" not in server:
                raise ValueError(f"{server!r} needs a port, e.g. kafka://{server}:9092")
        return value

    @model_validator(mode="after")
    def _security_complete(self) -> "Settings":
        if self.security_protocol.startswith("SASL"):
            if not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
                raise ValueError(
                    f"CXSTREAM_SECURITY_PROTOCOL={self.security_protocol} needs "
                    "CXSTREAM_SASL_MECHANISM, CXSTREAM_SASL_USERNAME and CXSTREAM_SASL_PASSWORD"
                )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"CXSTREAM_{name.upper()}={path} is not a readable file")
        if self.rules is not None and not self.rules.is_file():
            raise ValueError(f"CXSTREAM_RULES={self.rules} is not a readable file")
        return self

    @property
    def advertised_url(self) -> str:
        """This worker's web address as other workers use it (faust's canonical_url)."""
        if self.web_advertised_url:
            return self.web_advertised_url
        host = self.web_host
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        return f"http://{host}:{self.web_port}"

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers without the kafka:// scheme, comma separated."""
        return bootstrap_servers(self.broker)

    def to_env(self) -> dict[str, str]:
        """These settings as CXSTREAM_* variables (to start a worker process with them)."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "topics":
                for role, topic in value.model_dump().items():
                    env[f"CXSTREAM_TOPIC_{role.upper()}"] = topic
            elif value is not None:
                env[ENV_PREFIX + name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    def confluent_config(self) -> dict[str, str]:
        """Client settings for confluent-kafka (librdkafka names)."""
        config: dict[str, str] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username or ""
            config["sasl.password"] = self.sasl_password or ""
        if self.ssl_cafile:
            config["ssl.ca.location"] = str(self.ssl_cafile)
        if self.ssl_certfile:
            config["ssl.certificate.location"] = str(self.ssl_certfile)
        if self.ssl_keyfile:
            config["ssl.key.location"] = str(self.ssl_keyfile)
        return config


def bootstrap_servers(broker: str) -> str:
    """``kafka://a:9092;b:9092`` or ``a:9092,b:9092`` -> ``a:9092,b:9092``."""
    servers = []
    for part in broker.replace(";", ",").split(","):
        part = part.strip()
        if part.startswith("kafka://"):
            part = part[len("kafka://"):]
        if part:
            servers.append(part.rstrip("/"))
    return ",".join(servers)


def describe_error(error: ValidationError) -> str:
    """One line per problem, each naming the environment variable to fix."""
    lines = []
    for problem in error.errors():
        location = [str(part) for part in problem["loc"]]
        if location and location[0] == "topics":
            variable = "CXSTREAM_TOPIC_" + "_".join(location[1:]).upper()
        elif location:
            variable = ENV_PREFIX + "_".join(location).upper()
        else:
            variable = "configuration"
        message = problem["msg"].removeprefix("Value error, ")
        value = problem.get("input")
        shown = "" if variable.endswith("PASSWORD") or isinstance(value, dict) else f" (got {value!r})"
        if not location:
            lines.append(f"invalid configuration: {message}")
        else:
            lines.append(f"invalid {variable}{shown}: {message}")
    return "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raises :class:`ConfigurationError` with a readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigurationError(describe_error(error)) from None


class ConfigurationError(Exception):
    """Bad configuration: the message says what to fix. Shown without a traceback."""

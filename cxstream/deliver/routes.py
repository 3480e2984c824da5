"""The routes file: which trigger goes to which HTTP endpoint.

```yaml
endpoints:
  - name: crm
    url: https://crm.example.com/hooks/cx
    match: {channel: care}                  # or {trigger: [outage_notice, priority_care]}
    secret_env: CXSTREAM_SECRET_CRM         # HMAC key, read from the environment
    timeout_s: 5
    max_attempts: 8
    concurrency: 16
```

Validated by pydantic; a mistake raises :class:`RoutesError` with one line
naming the route and the field. A secret's value is read from the environment
at load time and never appears in a message, a repr or a log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class RoutesError(Exception):
    """The routes file cannot be used; the message says what to fix (one line)."""


def _names(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be a name or a non-empty list of names")
    return frozenset(value)


class Match(BaseModel):
    """Which events an endpoint gets: all given conditions must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: frozenset[str] | None = None
    trigger: frozenset[str] | None = None
    type: frozenset[str] | None = None  # the CloudEvent type, e.g. io.cxstream.trigger.outage_notice

    @field_validator("channel", "trigger", "type", mode="before")
    @classmethod
    def _list(cls, value: Any) -> frozenset[str] | None:
        return _names(value)

    @model_validator(mode="after")
    def _something(self) -> "Match":
        if self.channel is None and self.trigger is None and self.type is None:
            raise ValueError("needs at least one of channel, trigger, type")
        return self

    def matches(self, channel: str | None, trigger: str | None, type_: str | None) -> bool:
        return ((self.channel is None or channel in self.channel)
                and (self.trigger is None or trigger in self.trigger)
                and (self.type is None or type_ in self.type))


class Endpoint(BaseModel):
    """One webhook receiver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    match: Match
    secret_env: str | None = Field(default=None, description="environment variable holding the HMAC key")
    timeout_s: float = Field(default=5.0, gt=0, le=300)
    max_attempts: int = Field(default=8, ge=1, le=100)
    concurrency: int = Field(default=16, ge=1, le=1024)
    backoff_initial_s: float = Field(default=0.5, gt=0, le=60)
    backoff_max_s: float = Field(default=60.0, gt=0, le=3600)
    retry_after_max_s: float = Field(default=300.0, ge=0, description="cap on a receiver's Retry-After")
    circuit_failures: int = Field(default=5, ge=1, description="consecutive failures that open the circuit")
    circuit_open_s: float = Field(default=30.0, gt=0, description="how long an open circuit waits before a probe")

    _secret: bytes | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- raises on a bad port
        except ValueError as exc:
            raise ValueError(f"is not a URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise ValueError("must be the name of an environment variable, e.g. CXSTREAM_SECRET_CRM")
        return value

    @model_validator(mode="after")
    def _load_secret(self) -> "Endpoint":
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must not be below backoff_initial_s")
        if self.secret_env is not None:
            secret = os.environ.get(self.secret_env, "")
            if not secret:
                raise ValueError(f"secret_env names {self.secret_env}, which is not set or empty")
            self._secret = secret.encode()
        return self

    @property
    def secret(self) -> bytes | None:
        return self._secret

    @property
    def safe_url(self) -> str:
        """The URL without credentials, query or fragment: fit for logs and dead letters."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


class Routes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: list[Endpoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "Routes":
        seen: set[str] = set()
        for endpoint in self.endpoints:
            if endpoint.name in seen:
                raise ValueError(f"endpoint name {endpoint.name!r} is used twice")
            seen.add(endpoint.name)
        return self

    def matching(self, channel: str | None, trigger: str | None, type_: str | None) -> list[Endpoint]:
        return [e for e in self.endpoints if e.match.matches(channel, trigger, type_)]


def parse_routes(data: Any, origin: str = "routes") -> Routes:
    """Validate already-parsed YAML/JSON data; :class:`RoutesError` names route and field."""
    try:
        return Routes.model_validate(data)
    except ValidationError as error:
        raise RoutesError(f"{origin}: " + "; ".join(_describe(problem, data) for problem in error.errors())) from None


def load_routes(path: Path | str) -> Routes:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutesError(f"CXSTREAM_ROUTES={path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise RoutesError(f"routes file {path}: not valid YAML{where}: {problem}") from None
    return parse_routes(data, f"routes file {path}")


def _describe(problem: dict, data: Any) -> str:
    loc = list(problem["loc"])
    message = problem["msg"].removeprefix("Value error, ")
    if len(loc) >= 2 and loc[0] == "endpoints" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        try:
            name = data["endpoints"][index].get("name")
        except Exception:
            pass
        route = f"endpoint {name!r}" if isinstance(name, str) and name else f"endpoint #{index + 1}"
        field = ".".join(str(part) for part in loc[2:])
        if problem["type"] == "missing":
            message = "is required"
        return f"{route}: {field or '(the entry)'}: {message}" if field else f"{route}: {message}"
    if not loc:
        return message
    field = ".".join(str(part) for part in loc)
    if problem["type"] == "missing":
        message = "is required (a list of endpoints)"
    return f"{field}: {message}"

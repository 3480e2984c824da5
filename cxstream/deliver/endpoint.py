"""Delivering one event to one endpoint: signature, retries, bounded concurrency, circuit breaker.

* 2xx: delivered. 408, 429, 5xx, timeouts and connection errors: retried with
  exponential backoff and full jitter (a receiver's ``Retry-After`` is a floor),
  up to ``max_attempts``. Any other status: not retried (dead-lettered).
* At most ``concurrency`` requests in flight per endpoint (a semaphore held for
  one attempt only, never while waiting to retry).
* Circuit breaker: ``circuit_failures`` consecutive failures open it; while open
  no request is made (events wait, their attempts are not spent); after
  ``circuit_open_s`` one probe request is let through: success closes it, failure
  opens it again.

Messages built here never contain the secret or the URL's credentials/query.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Callable

import aiohttp

from .routes import Endpoint

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
SIGNATURE_HEADER = "X-Cxstream-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE_STATUS = frozenset({408, 429})


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Cxstream-Signature`` value: ``sha256=<hex HMAC-SHA256 of the exact body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def backoff_s(attempt: int, initial: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, initial * 2**(attempt-1))], at least 10% of it."""
    ceiling = min(cap, initial * (2 ** (attempt - 1)))
    return ceiling * (0.1 + 0.9 * rng())


class CircuitBreaker:
    """closed -> (n consecutive failures) -> open -> (after open_s) half-open: one probe."""

    def __init__(self, failures: int, open_s: float, on_change: Callable[[bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.open_s = open_s
        self._clock = clock
        self._on_change = on_change
        self._consecutive = 0
        self.state = "closed"
        self._opened_at = 0.0
        self._changed = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self.state != "closed"

    def _set(self, state: str) -> None:
        was_open = self.is_open
        self.state = state
        if state == "open":
            self._opened_at = self._clock()
        self._changed.set()
        self._changed = asyncio.Event()
        if self._on_change is not None and was_open != self.is_open:
            self._on_change(self.is_open)

    async def acquire(self) -> bool:
        """Wait until a request may be made; True when this request is the half-open probe."""
        while True:
            if self.state == "closed":
                return False
            changed = self._changed
            if self.state == "open":
                wait = self._opened_at + self.open_s - self._clock()
                if wait <= 0:
                    self._set("half_open")
                    return True
                try:
                    await asyncio.wait_for(changed.wait(), wait)
                except asyncio.TimeoutError:
                    pass
            else:  # half-open: a probe is out; wait for its verdict
                await changed.wait()

    def success(self) -> None:
        self._consecutive = 0
        if self.state != "closed":
            self._set("closed")

    def failure(self, probe: bool) -> None:
        self._consecutive += 1
        if probe or (self.state == "closed" and self._consecutive >= self.failures):
            self._set("open")

    def abandon_probe(self) -> None:
        """A probe that ended without a verdict (cancelled): let another one go."""
        if self.state == "half_open":
            self._set("open")
            self._opened_at -= self.open_s


@dataclass
class Outcome:
    delivered: bool
    attempts: int
    status: int | None  # last HTTP status, None when the last attempt got none
    error: str  # last status or error as a sentence ("" when delivered)
    seconds: float  # first attempt to final outcome


class EndpointClient:
    """Sends events to one endpoint; call :meth:`deliver` per event, concurrently."""

    def __init__(self, endpoint: Endpoint, on_retry: Callable[[], None] | None = None,
                 on_circuit: Callable[[bool], None] | None = None):
        self.endpoint = endpoint
        self._semaphore = asyncio.Semaphore(endpoint.concurrency)
        self.breaker = CircuitBreaker(endpoint.circuit_failures, endpoint.circuit_open_s, on_circuit)
        self._on_retry = on_retry
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.endpoint.concurrency, ttl_dns_cache=60)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.endpoint.timeout_s),
            skip_auto_headers=("User-Agent",), headers={"User-Agent": "cxstream-deliver"})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def headers(self, body: bytes, event_id: str) -> dict[str, str]:
        headers = {"Content-Type": CONTENT_TYPE, IDEMPOTENCY_HEADER: event_id}
        if self.endpoint.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.endpoint.secret, body)
        return headers

    async def deliver(self, body: bytes, event_id: str) -> Outcome:
        endpoint = self.endpoint
        assert self._session is not None, "start() first"
        headers = self.headers(body, event_id)
        started = time.monotonic()
        attempts = 0
        while True:
            probe = await self.breaker.acquire()
            attempts += 1
            status: int | None = None
            retry_after: float | None = None
            try:
                async with self._semaphore:
                    try:
                        async with self._session.post(endpoint.url, data=body, headers=headers,
                                                      allow_redirects=False) as response:
                            status = response.status
                            retry_after = retry_after_s(response.headers.get("Retry-After"))
                            await response.read()
                        error = f"HTTP {status}"
                    except asyncio.TimeoutError:
                        error = f"no answer within {endpoint.timeout_s:g} s"
                    except aiohttp.ClientError as exc:
                        error = self._safe(f"{type(exc).__name__}: {exc}")
                    except OSError as exc:
                        error = self._safe(f"{type(exc).__name__}: {exc}")
            except BaseException:
                if probe:
                    self.breaker.abandon_probe()
                raise
            if status is not None and 200 <= status < 300:
                self.breaker.success()
                return Outcome(True, attempts, status, "", time.monotonic() - started)
            retryable = status is None or status in RETRYABLE_STATUS or status >= 500
            if not retryable:
                # the receiver answered and refused this event: the endpoint itself works
                self.breaker.success()
                return Outcome(False, attempts, status, f"HTTP {status} (not retried)", time.monotonic() - started)
            self.breaker.failure(probe)
            if attempts >= endpoint.max_attempts:
                return Outcome(False, attempts, status, f"{error} after {attempts} attempts",
                               time.monotonic() - started)
            if self._on_retry is not None:
                self._on_retry()
            delay = backoff_s(attempts, endpoint.backoff_initial_s, endpoint.backoff_max_s)
            if retry_after is not None:
                delay = max(delay, min(retry_after, endpoint.retry_after_max_s))
            await asyncio.sleep(delay)

    def _safe(self, message: str) -> str:
        """An error text without the URL's query/credentials or the secret."""
        endpoint = self.endpoint
        message = message.replace(endpoint.url, endpoint.safe_url)
        if endpoint.secret:
            message = message.replace(endpoint.secret.decode(errors="replace"), "***")
        return message

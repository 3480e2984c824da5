"""Webhooks in ``cxstream demo``: a local counting receiver and one ``cxstream deliver`` process.

The demo starts them once its worker is ready and, in its summary, shows what
arrived at the receiver (after dropping copies by ``Idempotency-Key``) against
the triggers on the topics.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import yaml
from aiohttp import web

from ..ops.broker import free_port
from ..ops.settings import Settings
from .receiver import CountingReceiver

SECRET_ENV = "CXSTREAM_DEMO_WEBHOOK_SECRET"


class DemoWebhooks:
    def __init__(self, settings: Settings, workdir: Path, preexec_fn: Callable[[], None] | None = None):
        self.settings = settings.model_copy(update={
            "deliver_web_port": free_port(),
            "deliver_deadletter_topic": f"{settings.topics.deadletter}.delivery",
        })
        self.workdir = workdir
        self.preexec_fn = preexec_fn
        self.secret = os.urandom(16).hex()
        self.receiver = CountingReceiver(self.secret.encode())
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/cx"
        self.log_path = workdir / "deliver.log"
        self.process: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        started = threading.Event()

        def serve() -> None:
            loop = self._loop = asyncio.new_event_loop()
            runner = web.AppRunner(self.receiver.app(), access_log=None, shutdown_timeout=1)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="cxstream-demo-receiver", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the demo's webhook receiver did not start")
        routes = self.workdir / "routes.yaml"
        routes.write_text(yaml.safe_dump({"endpoints": [{
            "name": "demo-receiver", "url": self.url, "match": {"channel": ["care", "marketing"]},
            "secret_env": SECRET_ENV}]}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
        env.update(self.settings.to_env())
        env.update({"CXSTREAM_ROUTES": str(routes), SECRET_ENV: self.secret, "CXSTREAM_CREATE_TOPICS": "false"})
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "cxstream", "deliver"], env=env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=self.preexec_fn)
        return (f"deliver    pid {self.process.pid} -> signed webhooks to a local receiver {self.url} "
                f"(metrics http://127.0.0.1:{self.settings.deliver_web_port}/metrics, log {self.log_path})")

    def summary_lines(self, trigger_ids: set[str], timeout_s: float = 30.0) -> list[str]:
        """Wait (within ``timeout_s``) until every trigger arrived; then the summary lines."""
        deadline = time.monotonic() + timeout_s
        while not trigger_ids <= self.receiver.ids and time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.1)  # polling interval of a condition with a deadline
        stats = self.receiver.stats()
        got = len(trigger_ids & self.receiver.ids)
        missing = len(trigger_ids) - got
        lines = [f" webhooks   {got} of {len(trigger_ids)} triggers arrived at the local receiver, signatures "
                 f"verified ({stats['requests']} requests, {stats['copies']} copies dropped by Idempotency-Key"
                 + (f", {missing} missing" if missing else "") + ")"]
        if stats["by_trigger"]:
            lines.append("            " + ", ".join(f"{t} {n}" for t, n in stats["by_trigger"].items()))
        if self.process is not None and self.process.poll() is not None:
            lines.append(f"            deliver exited ({self.process.returncode}); see {self.log_path}")
        return lines

    def stop(self) -> int | None:
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(20)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            code = self.process.returncode
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        return code

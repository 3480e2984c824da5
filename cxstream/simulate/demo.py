"""``cxstream demo``: the whole pipeline on one machine, with nothing but the package.

1. a Kafka-protocol broker: the embedded one (Tansu, in memory) unless
   ``CXSTREAM_BROKER`` names a cluster;
2. the contract's topics, and one real ``cxstream worker`` process;
3. the synthetic operator, paced at ``--rate`` records/s for ``--duration``
   seconds (sized so its whole scripted scenario fits in the run), produced
   from a background thread;
4. a live status from the worker's ``/metrics`` while it runs;
5. once the worker has processed everything produced: a final summary,
   with the scenario checked against the trigger topics themselves.

Everything it starts (the worker, then the broker) is stopped on every path:
the end, an error, Ctrl-C or SIGTERM. Exit status: 0 when the run completed and
the scenario checks hold; 1 when the worker died, did not start, or a check
failed; 130 when interrupted (the summary of what was processed is still shown).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TextIO

import orjson

from cxstream.ops.settings import Settings, TopicNames
from cxstream.ops.worker_process import WorkerProcess
from cxstream.simulate.cli import CATEGORIES, ROLE_OF, RecordTally, by_role, fmt, scenario_sentence
from cxstream.simulate.operator import TIMELINE, SyntheticOperator
from cxstream.simulate.watch import LiveView, Snapshot, parse_metrics, render_status

__all__ = ["run_demo", "DEMO_MALFORMED_RATIO"]

#: Share of malformed records the demo sends, so dead letters show.
DEMO_MALFORMED_RATIO = 0.002
#: The producer may run this much past --duration (as a share, plus 2 s) before it is stopped.
_PRODUCE_GRACE = 0.10
#: The live score bands show the documents published in about this many seconds.
_SCORE_WINDOW_S = 5.0
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class DemoError(Exception):
    """The demo cannot go on; the message says why (and what to look at)."""


# --------------------------------------------------------------------------- worker
def _parent_death_signal(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to send ``sig`` to the child when we die."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except Exception:
        return None

    def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(1, int(sig))  # PR_SET_PDEATHSIG

    return preexec


class DemoWorker(WorkerProcess):
    """The worker in its own session: a Ctrl-C typed at the demo reaches the demo
    only (which then drains and stops the worker itself, in order), and the
    kernel stops the worker if the demo is killed outright."""

    def __init__(self, *args: Any, death_signal: int = signal.SIGTERM, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.death_signal = death_signal

    def start(self) -> "DemoWorker":
        env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
        env.update(self.settings.to_env())
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cxstream", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_parent_death_signal(self.death_signal),
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def snapshot(self, timeout_s: float = 2.0) -> Snapshot | None:
        try:
            status, body = self.get("/metrics", timeout_s=timeout_s)
        except OSError:
            return None
        if status != 200:
            return None
        return parse_metrics(body.decode("utf-8", "replace"))


# --------------------------------------------------------------------------- settings
def _explicit(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def demo_settings(settings: Settings, workdir: Path, broker_url: str | None) -> Settings:
    """The settings the demo runs with (see the module docstring)."""
    update: dict[str, Any] = {
        "data_dir": workdir / "data",
        "log_level": "INFO",
    }
    if not _explicit("CXSTREAM_WEB_PORT"):
        from cxstream.ops.broker import free_port

        update["web_port"] = free_port()
    if not _explicit("CXSTREAM_WEB_HOST"):
        update["web_host"] = "127.0.0.1"
    if broker_url is not None:  # the embedded broker: short group timings (joins in ~3 s, not ~23 s)
        update.update(broker=broker_url, session_timeout_s=6.0, heartbeat_interval_s=1.0)
    else:
        # A real cluster: never write synthetic alarms and triggers to the contract's own
        # topics by accident. Unless topics or app id were chosen explicitly, this run
        # gets topics and a consumer group of its own.
        named = any(k.startswith("CXSTREAM_TOPIC_") and v.strip() for k, v in os.environ.items())
        if not named and not _explicit("CXSTREAM_APP_ID"):
            run = uuid.uuid4().hex[:8]
            topics = TopicNames()
            update["topics"] = TopicNames(**{role: f"cxdemo-{run}.{name}"
                                             for role, name in topics.model_dump().items()})
            update["app_id"] = f"cxstream-demo-{run}"
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    return settings.model_copy(update=update)


# --------------------------------------------------------------------------- the run
class Demo:
    def __init__(self, settings: Settings, args: argparse.Namespace, out: TextIO | None = None):
        self.base_settings = settings
        self.args = args
        self.out = out or sys.stdout
        self.quiet = bool(getattr(args, "quiet", False))
        self.duration = float(args.duration)
        self.rate = float(args.rate)
        self.broker = None
        self.worker: DemoWorker | None = None
        self.webhooks = None  # cxstream.deliver.demo.DemoWebhooks
        self.settings: Settings = settings
        self.stop = threading.Event()
        self.producer: threading.Thread | None = None
        self.produce_done = threading.Event()
        self.history: deque[Snapshot] = deque(maxlen=64)  # recent scrapes, for windows
        self.workdir: Path | None = None
        self.result: dict[str, Any] = {}
        self.tally: RecordTally | None = None
        self.interrupted = False
        self.snapshot_size = 0
        self.events = 0
        self.description: dict[str, Any] = {}
        self.steps: list[tuple[int, str]] = []
        self.started_at = 0.0
        self.produce_began = 0.0
        self.produce_ended: float | None = None
        self.first: Snapshot | None = None
        self.last: Snapshot | None = None

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # ------------------------------------------------------------------ main
    def run(self) -> int:
        if self.duration <= 0 or self.rate <= 0 or self.args.customers < 1:
            self.say("cxstream demo: --duration, --rate and --customers must be positive")
            return 2
        self.started_at = time.monotonic()
        self.workdir = workdir = Path(tempfile.mkdtemp(prefix="cxstream-demo-"))
        previous_term = _on_sigterm_raise_interrupt()
        status = EXIT_FAILED
        try:
            status = self._run(workdir)
        except KeyboardInterrupt:
            self.interrupted = True
            self.say("\ninterrupted: stopping …")
            status = EXIT_INTERRUPTED
        except DemoError as error:
            self.say(f"cxstream demo: {error}")
            status = EXIT_FAILED
        finally:
            status = self._cleanup(status)
            _restore_sigterm(previous_term)
        return status

    def _run(self, workdir: Path) -> int:
        from cxstream.ops.topics import TopicError, ensure_topics

        say = self.say
        say(f"cxstream demo: {self.duration:g} s at {fmt(self.rate)} records/s, "
            f"{fmt(self.args.customers)} customers, seed {self.args.seed}; files in {workdir}")
        broker_url = None
        if not self.base_settings.broker:
            from cxstream.ops.broker import BrokerError, EmbeddedBroker

            say("broker     starting the embedded Kafka-protocol broker (Tansu, in memory) …")
            self.broker = EmbeddedBroker(log_dir=workdir)
            try:
                self.broker.start()
            except BrokerError as error:
                raise DemoError(f"the embedded broker did not start: {error}") from None
            broker_url = self.broker.url
            say(f"broker     embedded Tansu, pid {self.broker.pid}, {self.broker.url} "
                f"(started in {self.broker.started_in_s or 0:.2f} s; log {self.broker.log_path})")
        self.settings = settings = demo_settings(self.base_settings, workdir, broker_url)
        if broker_url is None:
            say(f"broker     {settings.bootstrap} (CXSTREAM_BROKER); consumer group {settings.app_id}")
        try:
            created = ensure_topics(settings)
        except TopicError as error:
            raise DemoError(str(error)) from None
        topics = settings.topics
        say(f"topics     {topics.faults}, {topics.quality}, {topics.customers} in; {topics.scores}, "
            f"{topics.care}, {topics.marketing}, {topics.deadletter} out"
            + (f" ({len(created)} created)" if created else " (already there)"))

        log_path = workdir / "worker.log"
        self.worker = DemoWorker(settings, log_path,
                                 death_signal=signal.SIGKILL if self.broker is not None else signal.SIGTERM)
        self.worker.start()
        say(f"worker     pid {self.worker.pid}, log {log_path}")
        self._wait_ready()
        base = self.worker.base_url
        say(f"worker HTTP {base}/metrics  {base}/readyz  {base}/healthz  {base}/customers/C100000")
        say(f"pages      {base}/ui/faults (faults and whom they hurt)  {base}/ui/customers/C100000 (a customer)")
        from cxstream.deliver.demo import DemoWebhooks

        self.webhooks = DemoWebhooks(settings, workdir, _parent_death_signal(
            signal.SIGKILL if self.broker is not None else signal.SIGTERM))
        say(self.webhooks.start())

        # ---- the synthetic operator, sized so its whole scenario fits in the run
        operator = SyntheticOperator(seed=self.args.seed, customers=self.args.customers,
                                     malformed_ratio=DEMO_MALFORMED_RATIO)
        self.snapshot_size = len(operator.customers_records())
        wanted = int(round(self.duration * self.rate))
        self.events = max(100, wanted - self.snapshot_size)
        if wanted < self.snapshot_size + 100:
            say(f"note       {fmt(self.snapshot_size)} customer records + 100 events take "
                f"{(self.snapshot_size + 100) / self.rate:.1f} s at this rate: longer than --duration")
        self.description = operator.describe(self.events)
        self.steps = _milestone_steps(self.description, self.events)
        say("scenario   " + scenario_sentence(self.description))
        self.tally = RecordTally(operator.stream(self.events))
        self._produce()
        # also after a Ctrl-C: show what was processed (a second Ctrl-C skips this)
        drained = self._drain(timeout_s=30.0 if self.interrupted else None)
        return self._summary(drained)

    # ----------------------------------------------------------------- phases
    def _wait_ready(self, timeout_s: float = 120.0) -> None:
        assert self.worker is not None
        self.say("worker     waiting until ready (/readyz): joining its consumer group, restoring state, "
                 "reading every alarm on the faults topic …")
        began = time.monotonic()
        last_state = None
        while True:
            code = self.worker.exit_code()
            if code is not None:
                raise _WorkerDied(code)
            state = None
            try:
                status, body = self.worker.get_json("/readyz")
                if status == 200:
                    break
                if isinstance(body, dict):
                    state = ("partitions settled" if body.get("partitions_settled") else "partitions pending",
                             "alarm feed caught up" if body.get("alarm_feed_caught_up") else "alarm feed catching up")
            except (OSError, ValueError):
                state = ("web server not up yet",)
            if state != last_state and state is not None and not self.quiet:
                self.say(f"           … {', '.join(state)} ({time.monotonic() - began:.1f} s)")
                last_state = state
            if time.monotonic() - began > timeout_s:
                raise DemoError(f"the worker was not ready within {timeout_s:.0f} s; last lines of its log "
                                f"({self.worker.log_path}):\n{self.worker.log_tail()}")
            time.sleep(0.2)  # back-off between readiness probes
        self.say(f"worker     ready after {time.monotonic() - began:.1f} s")

    def _produce(self) -> None:
        from cxstream.simulate.producer import produce

        assert self.tally is not None and self.worker is not None
        tally, settings = self.tally, self.settings

        def work() -> None:
            try:
                self.result["count"] = produce(settings, tally, rate=self.rate, stop=self.stop)
            except BaseException as error:  # reported by the main thread
                self.result["error"] = error
            finally:
                self.produce_ended = time.monotonic()
                self.produce_done.set()

        self.say(f"producing  {fmt(self.snapshot_size + self.events)} records for {self.duration:g} s "
                 f"(Ctrl-C stops early and still shows the summary)")
        self.first = self.worker.snapshot()
        view = None if self.quiet else LiveView(self.out)
        self.produce_began = time.monotonic()
        limit = self.produce_began + max(self.duration, (self.snapshot_size + self.events) / self.rate) * (
            1 + _PRODUCE_GRACE) + 2.0
        self.producer = threading.Thread(target=work, name="cxstream-demo-producer", daemon=True)
        self.producer.start()
        previous = self.first
        # Waiting on an Event, not Thread.join: a join interrupted by Ctrl-C can
        # return early afterwards (CPython 3.11), before the thread has finished.
        done = self.produce_done
        try:
            while not done.wait(0.25):
                self._check_worker()
                now = time.monotonic()
                if now >= limit and not self.stop.is_set():
                    self.stop.set()
                    self._note(view, f"note       the producer is behind schedule: stopped at "
                                     f"{now - self.produce_began:.0f} s")
                if view is not None and view.due(now):
                    snap = self.worker.snapshot()
                    if snap is not None:
                        self.last = snap
                        block, line = self._status(snap, previous, "running")
                        view.show(block, line, now)
                        previous = snap
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop.set()
            self._note(view, "\ninterrupted: stopping the producer (Ctrl-C again to skip the summary) …")
            while not done.wait(0.25):
                pass
        if view is not None:
            view.release()
        error = self.result.get("error")
        if error is not None:
            if isinstance(error, KeyboardInterrupt):
                self.interrupted = True
            else:
                raise DemoError(f"producing failed: {error}")

    def _note(self, view: LiveView | None, text: str) -> None:
        if view is not None:
            view.note(text)
        else:
            self.say(text)

    @property
    def produced(self) -> int:
        return int(self.result.get("count", 0))

    def _check_worker(self) -> None:
        assert self.worker is not None
        code = self.worker.exit_code()
        if code is not None:
            raise _WorkerDied(code)

    def _drain(self, settle_s: float = 2.0, timeout_s: float | None = None) -> bool:
        """Wait until the worker has processed every record produced (its
        ``cxstream_events_total`` counts each input record once, whatever its
        outcome) and stopped moving; then until its scores are flushed. True if
        it caught up before the deadline."""
        assert self.worker is not None
        produced = self.produced
        if timeout_s is None:
            timeout_s = 60.0 + produced / 2000.0
        deadline = time.monotonic() + timeout_s
        view = None if self.quiet else LiveView(self.out)
        if not self.quiet:
            self.say(f"draining   produced {fmt(produced)} records; waiting for the worker to process them …")
        previous = self.last
        stable_since = None
        last_key = None
        caught_up = False
        while time.monotonic() < deadline:
            self._check_worker()
            snap = self.worker.snapshot()
            now = time.monotonic()
            if snap is None:
                time.sleep(0.25)
                continue
            self.last = snap
            key = (snap.events_total, snap.score_count, snap.deadletters_total,
                   sum(snap.triggers.values()))
            if key != last_key:
                last_key, stable_since = key, now
            if snap.events_total >= produced and now - stable_since >= settle_s:
                caught_up = True
                break
            if view is not None and view.due(now):
                block, line = self._status(snap, previous, f"draining: {fmt(snap.events_total)} of "
                                                            f"{fmt(produced)} processed")
                view.show(block, line, now)
                previous = snap
            time.sleep(0.25)  # back-off between metric scrapes
        if view is not None:
            view.release()
        if not caught_up:
            behind = produced - (self.last.events_total if self.last else 0)
            self.say(f"note       after {timeout_s:.0f} s the worker had not caught up: {fmt(behind)} "
                     f"records not counted yet (the summary shows what it did)")
        return caught_up

    # ----------------------------------------------------------------- status
    def _position(self) -> int:
        """Records of the event stream (after the customer snapshot) produced so far."""
        handed = self.tally.handed_out if self.tally is not None else 0
        count = self.result.get("count")
        produced = handed if count is None else count
        return max(0, produced - self.snapshot_size)

    def _status(self, snap: Snapshot, previous: Snapshot | None, phase: str) -> tuple[list[str], str]:
        produced = self.tally.handed_out if self.tally is not None else 0
        elapsed = time.monotonic() - self.produce_began
        history = self.history
        history.append(snap)
        # the latest scrape at least the window's length ago (else the oldest there is)
        window = next((old for old in reversed(history) if old.at <= snap.at - _SCORE_WINDOW_S), history[0])
        return render_status(snap, previous, elapsed_s=elapsed, duration_s=self.duration,
                             produced=produced, milestone=self._milestone(snap), phase=phase,
                             scores_since=window if window is not snap else None)

    def _milestone(self, snap: Snapshot) -> list[str]:
        d = self.description
        position = self._position()
        reached = [what for index, what in self.steps if index < position]
        outage, planned, warning = d["outage"], d["planned"], d["warning"]
        n_out = outage["customers"]
        notices = snap.trigger_count("outage_notice")
        restored = snap.trigger_count("service_restored")
        credits = snap.trigger_count("service_credit")
        done = set(reached)
        if not reached:
            return [f"background traffic; {fmt(self.snapshot_size)} customer records loaded"]
        if "outage_clear" in done:
            text = (f"site outage {outage['site_id']} cleared after {d['outage_duration_s'] / 3600:.1f} h: "
                    f"{fmt(restored)} told service is back, {fmt(credits)} service credits "
                    f"({fmt(notices)} notified)")
        elif "outage_raise" in done:
            text = (f"site outage {outage['site_id']} raised: {fmt(n_out)} customers, {fmt(notices)} notified")
            if "cell_raise" in done:
                text += f"; cell alarm on {outage['cell_id']} joined"
            if "cell_clear" in done:
                text += " and cleared"
            elif "outage_ack" in done:
                text += "; acknowledged, field team dispatched"
            if "planned_raise" in done and "planned_clear" not in done:
                text += f"; planned work on {planned['cell_id']}"
        elif "degrade_start" in done:
            text = f"{len(d['degrading'])} customers degrading"
        else:
            text = (f"warning on {warning['resource_id']} raised (not service-affecting: no notices)")
        lines = [text]
        if "degrade_start" in done and "outage_raise" in done:
            lines.append(f"{len(d['degrading'])} customers degrading; priority_care sent "
                         f"{fmt(snap.trigger_count('priority_care'))}, retention_offer sent "
                         f"{fmt(snap.trigger_count('retention_offer'))} (to anyone)")
        return lines

    # ----------------------------------------------------------------- summary
    def _summary(self, drained: bool) -> int:
        from cxstream.simulate.reader import read_topic

        assert self.worker is not None and self.tally is not None
        say = self.say
        settings = self.settings
        topics = settings.topics
        snap = self.worker.snapshot(timeout_s=5.0) or self.last or Snapshot()
        produced = self.produced
        counts = self.tally.counts(produced)
        roles = by_role(counts)
        elapsed = (self.produce_ended or time.monotonic()) - self.produce_began

        outputs: dict[str, list[dict]] = {}
        problems: list[str] = []

        def read(role: str) -> list[dict]:
            topic = getattr(topics, role)
            try:
                return read_topic(settings, topic, idle_s=1.0, timeout_s=90.0)
            except TimeoutError as error:
                problems.append(f"could not read {topic}: {error}")
                return []

        # the four output topics at once: each read ends after 1 s without news
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="cxstream-demo-read") as pool:
            futures = {role: pool.submit(read, role) for role in ("care", "marketing", "deadletter", "scores")}
            outputs = {role: future.result() for role, future in futures.items()}
        latest_scores = _latest_scores(outputs["scores"])

        care = [orjson.loads(m["value"]) for m in outputs["care"] if m["value"] is not None]
        marketing = [orjson.loads(m["value"]) for m in outputs["marketing"] if m["value"] is not None]
        dead = [orjson.loads(m["value"]) for m in outputs["deadletter"] if m["value"] is not None]

        width = 78
        say("")
        say("═" * width)
        say(f" cxstream demo — summary{' (interrupted)' if self.interrupted else ''}")
        say("═" * width)
        say(f" produced   {fmt(produced)} records in {elapsed:.1f} s ({fmt(produced / elapsed if elapsed else 0)}"
            f"/s) to {settings.bootstrap}")
        for role in ("customers", "quality", "faults"):
            notes = [f"{fmt(counts[c])} {c.replace(' ' + role, '')}" for c in CATEGORIES
                     if ROLE_OF[c] == role and c != role and counts[c]]
            say(f"   {role:<10} {fmt(roles[role]):>9}" + (f"   incl. {', '.join(notes)}" if notes else ""))

        say("")
        total = snap.events_total
        say(f" processed  {fmt(total)} of {fmt(produced)} produced"
            + ("" if total == produced else f"  ({'+' if total > produced else ''}{fmt(total - produced)})")
            + ("" if drained else "  — the worker had not caught up"))
        outcomes = ("ok", "invalid", "duplicate", "late")
        say(f"   {'source':<10}" + "".join(f"{o:>11}" for o in outcomes))
        for source in ("customers", "quality", "faults"):
            say(f"   {source:<10}" + "".join(f"{fmt(snap.events.get((source, o), 0)):>11}" for o in outcomes))
        late = sum(n for (_, outcome), n in snap.events.items() if outcome == "late")
        if late:
            step = self.description.get("step_s", 0.0) * self.rate
            say(f"   late: older than the customer's clock by more than {settings.allowed_lateness_s:g} s of "
                f"event time (CXSTREAM_ALLOWED_LATENESS_S)"
                + (f"; this demo runs event time ×{step:,.0f}, so that is "
                   f"{settings.allowed_lateness_s / step:.2f} s of wall time" if step > 1 else ""))
        p50, p99 = snap.latency_quantile(0.5), snap.latency_quantile(0.99)
        if p50 is not None:
            say(f"   record received → outputs produced: p50 ≤ {p50:g} s, p99 ≤ {p99:g} s")

        say("")
        on_topic = Counter((e["data"]["channel"], e["data"]["trigger"]) for e in care + marketing)
        keys = sorted(set(on_topic) | {k for k, n in snap.triggers.items() if n},
                      key=lambda k: (k[0], _TRIGGER_ORDER.get(k[1], 9), k[1]))
        say(f" triggers   {'channel':<10}{'trigger':<18}{'counted':>9}{'on topic':>10}")
        for channel, trigger in keys:
            counted = snap.triggers.get((channel, trigger), 0)
            mark = "" if int(counted) == on_topic[(channel, trigger)] else "  ≠"
            say(f"            {channel:<10}{trigger:<18}{fmt(counted):>9}{fmt(on_topic[(channel, trigger)]):>10}{mark}")
        if not keys:
            say("            none")
        if self.webhooks is not None:
            for line in self.webhooks.summary_lines({e["id"] for e in care + marketing}):
                say(line)

        say("")
        say(f" held back  {'trigger':<18}{'reason':<16}{'count':>9}")
        held = sorted(((t, r, n) for (_, t, r), n in snap.suppressed.items() if n),
                      key=lambda x: (_TRIGGER_ORDER.get(x[0], 9), -x[2]))
        for trigger, reason, n in held:
            say(f"            {trigger:<18}{reason:<16}{fmt(n):>9}")
        if not held:
            say("            none")

        say("")
        by_source = Counter(_source_role(d.get("source_topic"), topics) for d in dead)
        say(f" dead letters {fmt(snap.deadletters_total)} counted, {fmt(len(dead))} on {topics.deadletter}"
            f" ({', '.join(f'{s} {fmt(n)}' for s, n in sorted(by_source.items())) or 'none'}); "
            f"{fmt(counts['malformed quality'] + counts['malformed faults'])} malformed records produced")
        for error, n in Counter(_error_kind(d.get("error", "")) for d in dead).most_common(4):
            say(f"   {n:>5} × {error}")

        say("")
        say(" scores     published documents (cxstream_score)     current score per customer (cx.scores)")
        published = snap.score_histogram()
        current = _current_histogram(latest_scores, [hi for _, hi, _ in published])
        total_pub = sum(n for _, _, n in published) or 1
        total_cur = sum(current.values()) or 1
        for low, high, n in published:
            cur = current.get(high, 0)
            say(f"   {low:>3g}–{high:<4g} {fmt(n):>8} {_bar(n / total_pub, 16):<16}  "
                f"{fmt(cur):>8} {_bar(cur / total_cur, 16)}")
        say(f"   {'total':<8} {fmt(sum(n for _, _, n in published)):>8} {'':<16}  {fmt(len(latest_scores)):>8} "
            f"customers; customers tracked by the worker: {fmt(snap.customers)}, active faults {fmt(snap.active_faults)}")

        say("")
        checks = self._scenario_checks(care, marketing)
        say(" scenario check (read back from the trigger topics)")
        failed = 0
        for state, text in checks:
            mark = {"ok": "ok  ", "fail": "FAIL", "n/a": " -- "}[state]
            failed += state == "fail"
            say(f"   [{mark}] {text}")
        for problem in problems:
            say(f"   [FAIL] {problem}")
        failed += len(problems)
        say("═" * width)
        if self.interrupted:
            return EXIT_INTERRUPTED
        if failed or not drained:
            say(f"cxstream demo: {failed} scenario check(s) failed" if failed
                else "cxstream demo: the worker did not process everything in time")
            return EXIT_FAILED
        return EXIT_OK

    def _scenario_checks(self, care: list[dict], marketing: list[dict]) -> list[tuple[str, str]]:
        d = self.description
        position = self._position()
        at = {what: index for index, what in self.steps}
        reached = {what for what, index in at.items() if index < position}
        events = defaultdict(list)
        for event in care + marketing:
            events[event["data"]["trigger"]].append(event)
        subjects = {trigger: Counter(e["subject"] for e in evs) for trigger, evs in events.items()}

        outage = d["outage"]
        out_ids = set(outage["customer_ids"])
        n_out = outage["customers"]
        planned_ids = set(d["planned"]["customer_ids"]) - out_ids
        checks: list[tuple[str, str]] = []

        def check(condition: bool, text: str, needs: str | None = None, label: str | None = None) -> None:
            if needs is not None and needs not in reached:
                checks.append(("n/a", (label or text.split(":")[0]) + ": not reached in this run"))
            else:
                checks.append(("ok" if condition else "fail", text))

        notices = subjects.get("outage_notice", Counter())
        notified = {s for s in notices if s in out_ids}
        others = {s for s in notices if s not in out_ids}
        repeated = sum(n - 1 for n in notices.values() if n > 1)
        check(len(notified) == n_out and not others and not repeated,
              f"outage_notice: {fmt(len(notified))} of {fmt(n_out)} customers of {outage['site_id']} "
              f"(scenario), {fmt(others and len(others) or 0)} others, {fmt(repeated)} repeated",
              needs="outage_raise")
        if outage.get("cell_alarm_id"):
            check(repeated == 0,
                  f"correlated cell alarm {outage['cell_alarm_id']} joined the episode: no second notice",
                  needs="cell_raise", label=f"correlated cell alarm {outage['cell_alarm_id']}")

        restored = subjects.get("service_restored", Counter())
        restored_ok = {s for s in restored if s in notified}
        clear_epoch = next((e["epoch"] for e in d["timeline"] if e["what"] == "outage_clear"), None)
        early = [e for e in events.get("service_restored", ())
                 if clear_epoch is not None and _epoch(e["time"]) < clear_epoch - 0.001]
        check(len(restored_ok) == len(notified) and len(restored) == len(restored_ok) and not early
              and len(notified) > 0,
              f"service_restored: {fmt(len(restored_ok))} of {fmt(len(notified))} notified customers, "
              f"after the clear of {outage['alarm_id']} ({fmt(len(early))} before it)",
              needs="outage_clear")
        if outage.get("cell_alarm_id"):
            both = [e for e in events.get("service_restored", ())
                    if set(e["data"].get("faults", ())) >= {outage["alarm_id"], outage["cell_alarm_id"]}]
            cell_customers = {e["subject"] for e in both}
            check(bool(cell_customers),
                  f"service_restored lists both alarms for the {fmt(len(cell_customers))} customers of "
                  f"{outage['cell_id']} (one episode)", needs="outage_clear",
                  label="service_restored for the correlated cell alarm")

        # per customer, not in total: one credit per outage episode (contract v2), so a
        # customer of the failed site (one episode, however many alarms joined it) gets one;
        # a redelivered copy carries the same CloudEvent id and is the same credit
        credit_ids: dict[str, set] = defaultdict(set)
        for e in events.get("service_credit", ()):
            credit_ids[e["subject"]].add(e["id"])
        credited = {s for s in credit_ids if s in out_ids}
        twice = {s for s, ids in credit_ids.items() if len(ids) > 1}
        if d.get("service_credit_expected"):
            check(len(credited) == n_out and not (set(credit_ids) - out_ids) and not twice,
                  f"service_credit: {fmt(len(credited))} of {fmt(n_out)} customers (outage "
                  f"{d['outage_duration_s'] / 3600:.1f} h > 4 h), {fmt(len(twice))} credited more than once",
                  needs="outage_clear")
        else:
            check(not twice, f"service_credit: {fmt(len(twice))} customers credited more than once",
                  needs="outage_clear")

        planned_told = {s for trig in ("outage_notice", "service_restored", "service_credit")
                        for s in subjects.get(trig, ()) if s in planned_ids}
        check(not planned_told,
              f"planned work on {d['planned']['cell_id']}: {fmt(len(planned_told))} of "
              f"{fmt(len(planned_ids))} customers got an outage trigger (announced work: none)",
              needs="planned_raise")

        degrading = d["degrading"]
        valued = {x["customer_id"] for x in degrading if x["value_tier"] in ("gold", "platinum")}
        consenting = {x["customer_id"] for x in degrading if x["marketing_consent"]}
        refusing = {x["customer_id"] for x in degrading} - consenting
        care_got = set(subjects.get("priority_care", ())) & valued
        other_care = set(subjects.get("priority_care", ())) - valued
        check(len(care_got) == len(valued),
              f"priority_care: {fmt(len(care_got))} of {fmt(len(valued))} degrading gold/platinum customers"
              f" (also {fmt(len(other_care & out_ids))} of the failed site, {fmt(len(other_care - out_ids))}"
              f" others)", needs="degrade_full")
        offers = set(subjects.get("retention_offer", ()))
        others = offers - consenting - refusing
        check(len(offers & consenting) == len(consenting) and not (offers & refusing),
              f"retention_offer: {fmt(len(offers & consenting))} of {fmt(len(consenting))} degrading "
              f"customers with consent, {fmt(len(offers & refusing))} of {fmt(len(refusing))} without "
              f"(also {fmt(len(others & out_ids))} of the failed site once it was back, "
              f"{fmt(len(others - out_ids))} others)", needs="degrade_full")
        return checks

    # ----------------------------------------------------------------- cleanup
    def _cleanup(self, status: int) -> int:
        """Stop everything that was started, in order; Ctrl-C is ignored meanwhile."""
        previous_int = None
        if threading.current_thread() is threading.main_thread():
            previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop.set()
            if self.producer is not None:
                self.produce_done.wait(70.0)
            if self.webhooks is not None:
                code = self.webhooks.stop()
                self.say(f"stopped    deliver (exit {code})")
            if self.worker is not None and self.worker.process is not None:
                code = self.worker.exit_code()
                if code is None:
                    try:
                        code = self.worker.stop(timeout_s=30.0)
                        self.say(f"stopped    worker (pid {self.worker.pid}, exit {code})")
                    except RuntimeError as error:
                        self.say(f"cxstream demo: {error}")
                        status = status or EXIT_FAILED
                else:
                    self.say(f"cxstream demo: the worker (pid {self.worker.pid}) {_exit_text(code)}; "
                             f"last lines of its log {self.worker.log_path}:\n{self.worker.log_tail(25)}")
                    status = EXIT_FAILED
            if self.broker is not None:
                pid = self.broker.pid
                self.broker.stop()
                self.say(f"stopped    embedded broker (pid {pid})")
            if self.workdir is not None:
                # the worker's state directory goes; its log and the broker's stay
                shutil.rmtree(self.workdir / "data", ignore_errors=True)
        finally:
            if previous_int is not None:
                signal.signal(signal.SIGINT, previous_int)
        return status


class _WorkerDied(DemoError):
    def __init__(self, code: int):
        super().__init__(f"the worker {_exit_text(code)} while the demo was running")
        self.code = code


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


# --------------------------------------------------------------------------- helpers
_TRIGGER_ORDER = {"outage_notice": 0, "service_restored": 1, "service_credit": 2, "priority_care": 3,
                  "retention_offer": 4}


def _milestone_steps(description: dict[str, Any], events: int) -> list[tuple[int, str]]:
    steps = [(entry["index"], entry["what"]) for entry in description.get("timeline", ())]
    steps.append((int(TIMELINE["degrade_start"] * events), "degrade_start"))
    steps.append((int(TIMELINE["degrade_full"] * events), "degrade_full"))
    return sorted(steps)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _source_role(topic: str | None, topics: TopicNames) -> str:
    for role in ("faults", "quality", "customers"):
        if topic == getattr(topics, role):
            return role
    return topic or "?"


def _error_kind(error: str, limit: int = 90) -> str:
    import re

    text = re.sub(r"-?\d+(\.\d+)?", "N", error)
    text = re.sub(r"'[^']*'", "'…'", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bar(share: float, width: int) -> str:
    cells = share * width
    full = int(cells)
    return "█" * full + ("▌" if cells - full >= 0.5 else "")


def _latest_scores(messages: list[dict]) -> dict[str, float]:
    latest: dict[str, float] = {}
    for message in messages:
        key = message["key"].decode() if message["key"] else ""
        if message["value"] is None:
            latest.pop(key, None)
        else:
            latest[key] = float(orjson.loads(message["value"])["score"])
    return latest


def _current_histogram(scores: dict[str, float], bounds: list[float]) -> dict[float, int]:
    bounds = sorted(bounds) or [100.0]
    out: dict[float, int] = {b: 0 for b in bounds}
    for score in scores.values():
        for bound in bounds:
            if score <= bound:
                out[bound] += 1
                break
    return out


def _on_sigterm_raise_interrupt() -> Any:
    """SIGTERM to the demo stops it like Ctrl-C does (so cleanup runs)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    """``cxstream demo``: see the module docstring. Returns the exit status."""
    return Demo(settings, args).run()

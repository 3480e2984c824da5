"""Shared fixtures: the embedded broker and per-test settings.

Fixtures
--------
``broker`` (function; the brokers themselves are started once per session)
    The broker of this test: the embedded Tansu (:class:`~cxstream.ops.broker.
    EmbeddedBroker`, in memory) unless the test is parametrised over
    :data:`BOTH_BROKERS` (``pytestmark = on_both_brokers``), which runs it on
    Tansu and on Apache Kafka (:class:`~cxstream.ops.apache_kafka.ApacheKafka`,
    KRaft, PLAINTEXT listener; ``tansu``/``kafka`` in the test id). Attributes:
    ``.bootstrap`` (``127.0.0.1:PORT``), ``.url`` (``kafka://127.0.0.1:PORT``),
    ``.log_tail()``. Set ``CXSTREAM_TEST_BROKER=host:port`` to run the Tansu
    cases against another broker instead. Tests using it are marked ``broker``
    automatically, and their Apache Kafka cases ``kafka`` too
    (``pytest -m "not kafka"`` skips those).

``make_settings`` (function)
    ``make_settings(**overrides) -> Settings``: settings for one test on the
    session broker, with topic names unique to that call (``t<uid>.faults``,
    ``t<uid>.quality`` …), ``app_id`` unique too, short consumer-group timings
    (``session_timeout_s=6``, ``heartbeat_interval_s=1``), a temporary
    ``data_dir`` and a free ``web_port``. Keyword overrides win. Topics are not
    created: call ``cxstream.ops.topics.ensure_topics(settings)`` if needed.

``settings`` (function)
    ``make_settings()`` once: the common case.

``read_topic`` (function)
    The function :func:`cxstream.simulate.reader.read_topic`:
    ``read_topic(settings_or_bootstrap, topic, until=None, idle_s=1.0,
    timeout_s=30.0) -> list[dict]`` with dicts ``{key, value, headers,
    partition, offset, timestamp, topic}``. With ``until`` it waits until the
    predicate holds (``TimeoutError`` otherwise); without, it reads to the
    end until the topic is idle for ``idle_s``. Outside fixtures import it
    directly: ``from cxstream.simulate.reader import read_topic``.

Helpers importable as ``from conftest import free_port, unique_id`` are also
defined here.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from cxstream.ops.broker import EmbeddedBroker, free_port
from cxstream.ops.settings import Settings, TopicNames
from cxstream.simulate.reader import read_topic as _read_topic

__all__ = ["free_port", "unique_id", "make_test_settings", "read_topic", "BOTH_BROKERS", "on_both_brokers"]

read_topic = _read_topic


def unique_id() -> str:
    """A short id unique within and across test runs (hex)."""
    return uuid.uuid4().hex[:10]


def make_test_settings(broker_url: str, data_root: Path, **overrides: object) -> Settings:
    """Settings for one test: unique topics and app id, short group timings, free port."""
    uid = unique_id()
    topics = TopicNames(
        faults=f"t{uid}.faults",
        quality=f"t{uid}.quality",
        customers=f"t{uid}.customers",
        scores=f"t{uid}.scores",
        care=f"t{uid}.care",
        marketing=f"t{uid}.marketing",
        deadletter=f"t{uid}.deadletter",
        fault_impact=f"t{uid}.fault_impact",
    )
    data_dir = data_root / f"app-{uid}"
    data_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = {
        "broker": broker_url,
        "app_id": f"cxstream-test-{uid}",
        "topics": topics,
        "session_timeout_s": 6,
        "heartbeat_interval_s": 1,
        "data_dir": data_dir,
        "web_port": free_port(),
        "web_host": "127.0.0.1",
        "partitions": 4,
        "replication_factor": 1,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class ExternalBroker:
    """A broker this session did not start (``CXSTREAM_TEST_BROKER``)."""

    bootstrap: str

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def log_tail(self, lines: int = 40) -> str:
        return ""


#: the brokers a Kafka-crossing test runs on: ``pytestmark = on_both_brokers``
BOTH_BROKERS = ("tansu", "kafka")
on_both_brokers = pytest.mark.parametrize("broker", BOTH_BROKERS, indirect=True)


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[EmbeddedBroker | ExternalBroker]:
    """The session's embedded Tansu, or ``CXSTREAM_TEST_BROKER``."""
    external = os.environ.get("CXSTREAM_TEST_BROKER", "").strip()
    if external:
        yield ExternalBroker(Settings(broker=external).bootstrap)
        return
    embedded = EmbeddedBroker(startup_timeout=30)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def apache_kafka():
    """The session's Apache Kafka broker (started on first use, about 2 s)."""
    import shutil

    from cxstream.ops.apache_kafka import ApacheKafka

    if shutil.which("java") is None:
        message = "java is not installed (make kafka-deps installs Debian's default-jdk-headless)"
        if os.environ.get("CXSTREAM_REQUIRE_DEPLOY_TOOLS"):
            pytest.fail(message + " and CXSTREAM_REQUIRE_DEPLOY_TOOLS is set")
        pytest.skip(message)
    kafka = ApacheKafka()
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def broker(request: pytest.FixtureRequest):
    """This test's broker (see module docstring)."""
    kind = getattr(request, "param", "tansu")
    if kind not in BOTH_BROKERS:
        raise ValueError(f"unknown test broker {kind!r}; one of {BOTH_BROKERS}")
    return request.getfixturevalue("apache_kafka" if kind == "kafka" else "tansu_broker")


@pytest.fixture
def make_settings(
    broker: EmbeddedBroker | ExternalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    """``make_settings(**overrides) -> Settings`` on the session broker (see module docstring)."""
    root = tmp_path_factory.mktemp("cxstream-data")

    def factory(**overrides: object) -> Settings:
        return make_test_settings(broker.url, root, **overrides)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Settings with unique topics on the session broker."""
    return make_settings()


@pytest.fixture(name="read_topic")
def read_topic_fixture() -> Callable[..., list[dict]]:
    """:func:`cxstream.simulate.reader.read_topic`."""
    return _read_topic


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the broker (directly or through settings) with ``broker``."""
    for item in items:
        if "broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.broker)
            callspec = getattr(item, "callspec", None)
            if callspec is not None and callspec.params.get("broker") == "kafka":
                item.add_marker(pytest.mark.kafka)
        if "apache_kafka" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)

"""The embedded broker: start, a produce/consume round trip, stop, failure modes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from cxstream.ops.broker import BrokerError, EmbeddedBroker
from cxstream.ops.topics import TopicSpec, ensure_topics
from cxstream.simulate.reader import read_topic


def test_session_broker_answers(broker):
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=5)
    assert len(metadata.brokers) == 1
    assert broker.url == f"kafka://{broker.bootstrap}"
    assert broker.bootstrap.startswith("127.0.0.1:")


def test_produce_consume_round_trip(settings):
    topic = settings.topics.quality
    ensure_topics(
        settings,
        [TopicSpec(topic, 4, 1, {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"})],
    )
    producer = Producer({**settings.confluent_config(), "partitioner": "murmur2_random", "linger.ms": 5})
    sent = {f"k{i}".encode(): f'{{"n": {i}}}'.encode() for i in range(200)}
    for key, value in sent.items():
        producer.produce(topic, value, key, headers=[("h", b"v")])
    assert producer.flush(30) == 0

    messages = read_topic(settings, topic, until=lambda got: len(got) >= len(sent), timeout_s=30)

    assert {m["key"]: m["value"] for m in messages} == sent
    assert all(m["headers"] == {"h": b"v"} for m in messages)
    assert {m["partition"] for m in messages} == {0, 1, 2, 3}
    # same key, same partition: murmur2 placement is stable
    partition_of = {m["key"]: m["partition"] for m in messages}
    producer.produce(topic, b"{}", b"k7")
    assert producer.flush(30) == 0
    again = read_topic(settings, topic, until=lambda got: len(got) > len(sent), timeout_s=30)
    assert [m["partition"] for m in again if m["value"] == b"{}"] == [partition_of[b"k7"]]


def test_start_stop_context_manager(tmp_path):
    began = time.monotonic()
    with EmbeddedBroker(log_dir=tmp_path) as local:
        started = time.monotonic() - began
        assert local.running
        assert local.pid is not None
        AdminClient({"bootstrap.servers": local.bootstrap}).list_topics(timeout=5)
        port = local.port
        assert "ready" in local.log_tail()
    print(f"embedded broker started in {started * 1000:.0f} ms")
    assert not local.running
    # the port is free again once stopped
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert local.stop() is None  # stopping twice is harmless


def test_taken_port_is_a_clear_error(broker, tmp_path):
    if not isinstance(broker, EmbeddedBroker):
        pytest.skip("needs the embedded broker")
    clash = EmbeddedBroker(port=broker.port, log_dir=tmp_path, startup_timeout=10)
    with pytest.raises(BrokerError, match="taken") as error:
        clash.start()
    assert "AddrInUse" in str(error.value)  # the log tail is in the message
    assert not clash.running
    # the session broker is untouched
    AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=5)


def test_broker_that_exits_is_a_clear_error(tmp_path):
    broken = EmbeddedBroker(log_dir=tmp_path, extra_args=["--no-such-flag"], startup_timeout=10)
    with pytest.raises(BrokerError, match="exited with status") as error:
        broken.start()
    assert "no-such-flag" in str(error.value)
    assert not broken.running


def test_automatic_port_retries_when_taken(tmp_path, monkeypatch):
    # Hand the broker a port that is taken first, then a free one.
    import cxstream.ops.broker as broker_module

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports = iter([taken])
        real_free_port = broker_module.free_port
        monkeypatch.setattr(
            broker_module, "free_port", lambda host="127.0.0.1": next(ports, None) or real_free_port(host)
        )
        with EmbeddedBroker(log_dir=tmp_path) as local:
            assert local.port != taken
            AdminClient({"bootstrap.servers": local.bootstrap}).list_topics(timeout=5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_broker_dies_with_its_process(tmp_path):
    """A test run killed with SIGKILL leaves no broker behind."""
    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\n"
        "from cxstream.ops.broker import EmbeddedBroker\n"
        "broker = EmbeddedBroker().start()\n"
        "print(broker.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    owner = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        broker_pid = int(owner.stdout.readline())
        assert _alive(broker_pid)
    finally:
        owner.kill()
        owner.wait(10)
    deadline = time.monotonic() + 10
    while _alive(broker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(broker_pid)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False

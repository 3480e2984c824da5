"""The Apache Kafka test broker (cxstream/ops/apache_kafka.py) and our clients against it.

One broker for the module (KRaft combined mode, Kafka 4.x from Maven Central, see
tools/kafka/); each test has its own topics, groups and principals. Covered: confluent-kafka
over PLAINTEXT, SASL_SSL/SCRAM-SHA-512 (ACLs, a wrong password) and mutual TLS (with, without
and with an untrusted client certificate); DescribeConfigs; aiokafka (faust's client) over
each listener. Needs ``java``: without it the tests skip, and with
``CXSTREAM_REQUIRE_DEPLOY_TOOLS=1`` (``make test``, CI, after ``make kafka-deps``) they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from typing import Callable, Iterator

import pytest
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
)
from confluent_kafka.admin import ConfigResource, ResourceType

from cxstream.ops.apache_kafka import ApacheKafka

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def kafka() -> Iterator[ApacheKafka]:
    if shutil.which("java") is None:
        message = "java is not installed (make kafka-deps installs Debian's default-jdk-headless)"
        if os.environ.get("CXSTREAM_REQUIRE_DEPLOY_TOOLS"):
            pytest.fail(message + " and CXSTREAM_REQUIRE_DEPLOY_TOOLS is set")
        pytest.skip(message)
    broker = ApacheKafka(users={"alice": "alice-" + uuid.uuid4().hex})
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def uid() -> str:
    return uuid.uuid4().hex[:10]


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``predicate`` until it returns something truthy; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s")
        time.sleep(0.05)  # a poll interval, not a synchronisation


# -- confluent-kafka helpers ------------------------------------------------------------


def produce(conf: dict[str, str], topic: str, values: list[bytes], timeout: float = 20) -> None:
    """Produce and flush; raise KafkaException with the first delivery error."""
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({**conf, "message.timeout.ms": int(timeout * 1000), "log_level": 0})
    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=str(i).encode(), on_delivery=on_delivery)
    remaining = producer.flush(timeout + 5)
    if errors:
        raise KafkaException(errors[0])
    assert remaining == 0, "messages still in flight after flush"


def consume(
    conf: dict[str, str], topic: str, group: str, count: int, timeout: float = 30
) -> list[bytes]:
    """Read ``count`` values with a consumer group from the earliest offset; commit them."""
    consumer = Consumer(
        {
            **conf,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "log_level": 0,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumed {len(values)} of {count} from {topic}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            values.append(msg.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return values


def client_errors(
    conf: dict[str, str], wanted: set[int], timeout: float = 20, text: str = ""
) -> tuple[list[KafkaError], float]:
    """The errors librdkafka reports for a client fetching metadata, until a wanted one.

    Wanted: a code in ``wanted`` whose message contains ``text``. Returns the errors and the
    seconds until the wanted one; AssertionError if none came in time.
    """
    errors: list[KafkaError] = []
    began = time.monotonic()
    producer = Producer({**conf, "error_cb": errors.append, "log_level": 0})
    while time.monotonic() - began < timeout:
        try:
            producer.list_topics(timeout=0.5)
        except KafkaException as exc:
            errors.append(exc.args[0])
        producer.poll(0.05)
        if any(e.code() in wanted and text in e.str() for e in errors):
            return errors, time.monotonic() - began
    raise AssertionError(f"no error {wanted} with {text!r} within {timeout}s: {errors[:5]}")


# -- the broker -------------------------------------------------------------------------


def test_broker_starts_with_the_expected_listeners(kafka: ApacheKafka) -> None:
    assert kafka.running and kafka.startup_seconds is not None
    print(f"Apache Kafka {kafka.version} started in {kafka.startup_seconds:.2f}s")
    md = kafka.admin().list_topics(timeout=10)
    assert [b.id for b in md.brokers.values()] == [1]
    props = kafka.properties_file.read_text()
    assert "process.roles=broker,controller" in props
    assert "StandardAuthorizer" in props
    assert kafka.log_file.exists()
    for password in kafka.users.values():
        assert password not in kafka.log_file.read_text()


def test_plaintext_produce_and_consume(kafka: ApacheKafka) -> None:
    topic, group = f"plain-{uid()}", f"g-{uid()}"
    kafka.create_topic(topic, partitions=3)
    values = [f"v{i}".encode() for i in range(30)]
    produce({"bootstrap.servers": kafka.bootstrap}, topic, values)
    got = consume({"bootstrap.servers": kafka.bootstrap}, topic, group, len(values))
    assert sorted(got) == sorted(values)
    admin = kafka.admin()  # held: a collected AdminClient leaves its futures pending
    committed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)]
    )[group].result(timeout=10)
    assert sum(tp.offset for tp in committed.topic_partitions if tp.offset > 0) == len(values)


# -- SASL_SSL with SCRAM-SHA-512 and ACLs -----------------------------------------------


def test_sasl_scram_user_with_acls_for_one_topic_and_one_group(kafka: ApacheKafka) -> None:
    user, password = f"u{uid()}", "pw-" + uuid.uuid4().hex
    kafka.create_user(user, password)
    topic, other_topic, group = f"scram-{uid()}", f"scram-other-{uid()}", f"g-{uid()}"
    kafka.create_topic(topic)
    kafka.create_topic(other_topic)
    kafka.grant(f"User:{user}", topic=topic, group=group)
    conf = kafka.sasl_ssl_config(user)

    produce(conf, topic, [b"a", b"b", b"c"])
    assert sorted(consume(conf, topic, group, 3)) == [b"a", b"b", b"c"]

    with pytest.raises(KafkaException) as denied_topic:
        produce(conf, other_topic, [b"x"], timeout=10)
    assert denied_topic.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    with pytest.raises(KafkaException) as denied_group:
        consume(conf, topic, f"not-granted-{uid()}", 1, timeout=15)
    assert denied_group.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_sasl_scram_user_created_at_format_time(kafka: ApacheKafka) -> None:
    topic, group = f"alice-{uid()}", f"g-{uid()}"
    kafka.create_topic(topic)
    kafka.grant("User:alice", topic=topic, group=group)
    conf = kafka.sasl_ssl_config("alice")
    produce(conf, topic, [b"hello"])
    assert consume(conf, topic, group, 1) == [b"hello"]


def test_sasl_wrong_password_fails_fast_with_an_authentication_error(kafka: ApacheKafka) -> None:
    conf = kafka.sasl_ssl_config("alice", password="not-the-password")
    errors, elapsed = client_errors(conf, {KafkaError._AUTHENTICATION})
    print("librdkafka reported:", errors)
    auth = next(e for e in errors if e.code() == KafkaError._AUTHENTICATION)
    assert "SCRAM-SHA-512" in auth.str() and "invalid credentials" in auth.str(), auth
    assert kafka.users["alice"] not in str(errors)
    assert elapsed < 10, f"the authentication error took {elapsed:.1f}s"


def test_sasl_unknown_user_fails_with_an_authentication_error(kafka: ApacheKafka) -> None:
    conf = kafka.sasl_ssl_config("alice", password="x")
    conf["sasl.username"] = f"nobody-{uid()}"
    client_errors(conf, {KafkaError._AUTHENTICATION})


def test_sasl_ssl_with_an_untrusted_ca_fails_the_handshake(kafka: ApacheKafka) -> None:
    conf = kafka.sasl_ssl_config("alice")
    conf["ssl.ca.location"] = str(kafka.untrusted_ca_file())
    errors, _ = client_errors(conf, {KafkaError._SSL})
    print("librdkafka reported:", errors)
    ssl_error = next(e for e in errors if e.code() == KafkaError._SSL)
    assert "certificate verify failed" in ssl_error.str(), ssl_error


# -- SSL with client certificates ---------------------------------------------------------


def test_ssl_with_a_client_certificate(kafka: ApacheKafka) -> None:
    cn = f"client-{uid()}"
    cert, key = kafka.client_certificate(cn)
    topic, group = f"mtls-{uid()}", f"g-{uid()}"
    kafka.create_topic(topic, partitions=2)
    kafka.grant(f"User:{cn}", topic=topic, group=group)
    conf = kafka.ssl_config(cert, key)
    produce(conf, topic, [b"1", b"2"])
    assert sorted(consume(conf, topic, group, 2)) == [b"1", b"2"]

    # the principal is the CN: another CN has no ACLs
    other_cert, other_key = kafka.client_certificate(f"other-{uid()}")
    with pytest.raises(KafkaException) as denied:
        produce(kafka.ssl_config(other_cert, other_key), topic, [b"x"], timeout=10)
    assert denied.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_ssl_without_a_client_certificate_fails(kafka: ApacheKafka) -> None:
    """With TLS 1.3 the client finishes its side of the handshake before the broker rejects it:
    librdkafka reports a transport error with the broker's alert, not an _SSL error."""
    conf = {
        "bootstrap.servers": kafka.ssl_bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.location": str(kafka.ca_file),
    }
    errors, elapsed = client_errors(conf, {KafkaError._TRANSPORT}, text="alert bad certificate")
    print("librdkafka reported:", errors[:3])
    assert elapsed < 10


def test_ssl_with_an_untrusted_client_certificate_fails(kafka: ApacheKafka) -> None:
    cert, key = kafka.client_certificate(f"rogue-{uid()}", trusted=False)
    client_errors(kafka.ssl_config(cert, key), {KafkaError._TRANSPORT}, text="alert bad certificate")


# -- DescribeConfigs ------------------------------------------------------------------------


def test_describe_configs_returns_the_topic_configs(kafka: ApacheKafka) -> None:
    topic = f"configs-{uid()}"
    kafka.create_topic(
        topic, partitions=2, config={"cleanup.policy": "compact", "retention.ms": 3_600_000}
    )
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = kafka.admin()
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"
    assert configs["retention.ms"].value == "3600000"
    assert not configs["cleanup.policy"].is_default
    # unlike Tansu, the broker answers every topic config, defaults included
    assert configs["segment.bytes"].is_default
    assert configs["min.insync.replicas"].value == "1"


def test_describe_configs_needs_an_acl_on_the_secured_listener(kafka: ApacheKafka) -> None:
    topic = f"configs-acl-{uid()}"
    kafka.create_topic(topic, config={"cleanup.policy": "delete", "retention.ms": 60_000})
    user, password = f"cfg{uid()}", "pw-" + uuid.uuid4().hex
    kafka.create_user(user, password)
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**kafka.sasl_ssl_config(user), "log_level": 0})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    with pytest.raises(KafkaException) as denied:
        admin.describe_configs([resource])[resource].result(timeout=15)
    assert denied.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    kafka.grant(f"User:{user}", topic=topic, operations=("DESCRIBE_CONFIGS",))
    configs = admin.describe_configs([resource])[resource].result(timeout=15)
    assert configs["retention.ms"].value == "60000"
    assert configs["cleanup.policy"].value == "delete"


# -- aiokafka (the client faust uses) --------------------------------------------------------


async def _aiokafka_round_trip(topic: str, group: str, count: int, **client: object) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    producer = AIOKafkaProducer(request_timeout_ms=15000, **client)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=str(i).encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        **client,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(values) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"aiokafka consumed {len(values)} of {count}")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                values.extend(r.value for r in records)
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(topic, 0))
        assert committed is not None and committed > 0
    finally:
        await consumer.stop()
    return values


def test_aiokafka_plaintext(kafka: ApacheKafka) -> None:
    topic, group = f"aio-{uid()}", f"g-{uid()}"
    kafka.create_topic(topic)
    got = asyncio.run(_aiokafka_round_trip(topic, group, 10, bootstrap_servers=kafka.bootstrap))
    assert sorted(got) == sorted(f"m{i}".encode() for i in range(10))


def test_aiokafka_sasl_ssl_scram(kafka: ApacheKafka) -> None:
    from aiokafka.helpers import create_ssl_context

    topic, group = f"aio-scram-{uid()}", f"g-{uid()}"
    kafka.create_topic(topic)
    kafka.grant("User:alice", topic=topic, group=group)
    got = asyncio.run(
        _aiokafka_round_trip(
            topic,
            group,
            5,
            bootstrap_servers=kafka.sasl_ssl_bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username="alice",
            sasl_plain_password=kafka.users["alice"],
            ssl_context=create_ssl_context(cafile=str(kafka.ca_file)),
        )
    )
    assert len(got) == 5


def test_aiokafka_ssl_client_certificate(kafka: ApacheKafka) -> None:
    from aiokafka.helpers import create_ssl_context

    cn = f"aio-{uid()}"
    cert, key = kafka.client_certificate(cn)
    topic, group = f"aio-mtls-{uid()}", f"g-{uid()}"
    kafka.create_topic(topic)
    kafka.grant(f"User:{cn}", topic=topic, group=group)
    got = asyncio.run(
        _aiokafka_round_trip(
            topic,
            group,
            5,
            bootstrap_servers=kafka.ssl_bootstrap,
            security_protocol="SSL",
            ssl_context=create_ssl_context(
                cafile=str(kafka.ca_file), certfile=str(cert), keyfile=str(key)
            ),
        )
    )
    assert len(got) == 5


def test_aiokafka_wrong_password(kafka: ApacheKafka, caplog: pytest.LogCaptureFixture) -> None:
    """aiokafka 0.14 raises KafkaConnectionError("Unable to bootstrap ..."); the SASL cause
    (SaslAuthenticationFailed, error 58) is only in its log record, not in the exception."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError
    from aiokafka.helpers import create_ssl_context

    async def attempt() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.sasl_ssl_bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username="alice",
            sasl_plain_password="wrong",
            ssl_context=create_ssl_context(cafile=str(kafka.ca_file)),
            request_timeout_ms=10000,
        )
        try:
            await producer.start()
        finally:
            await producer.stop()

    began = time.monotonic()
    with caplog.at_level("ERROR", logger="aiokafka"):
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            asyncio.run(attempt())
    assert time.monotonic() - began < 15
    assert any("SaslAuthenticationFailed" in r.getMessage() for r in caplog.records), caplog.text


def test_aiokafka_ssl_without_a_client_certificate(
    kafka: ApacheKafka, caplog: pytest.LogCaptureFixture
) -> None:
    """aiokafka: KafkaConnectionError("Unable to bootstrap ..."); its log says only
    "Connection at ... closed" (no TLS alert, unlike librdkafka)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError
    from aiokafka.helpers import create_ssl_context

    async def attempt() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.ssl_bootstrap,
            security_protocol="SSL",
            ssl_context=create_ssl_context(cafile=str(kafka.ca_file)),
            request_timeout_ms=10000,
        )
        try:
            await producer.start()
        finally:
            await producer.stop()

    with caplog.at_level("ERROR", logger="aiokafka"):
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            asyncio.run(attempt())
    print("aiokafka logged:", caplog.text)


def test_freeze_and_thaw(kafka: ApacheKafka) -> None:
    admin = kafka.admin()
    kafka.freeze()
    try:
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=1)
    finally:
        kafka.thaw()
    wait_for(lambda: admin.list_topics(timeout=2).brokers, 30, "the broker answering after thaw")

"""The contract's topics: plan, creation with explicit configs, checks."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigResource

from conftest import on_both_brokers
from cxstream.ops.topics import (
    ROLES,
    TopicSpec,
    check_topics,
    ensure_topics,
    topic_config,
    topic_plan,
)

pytestmark = on_both_brokers


def _configs(settings, names):
    admin = AdminClient(settings.confluent_config())
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names])
    return {
        resource.name: {k: v.value for k, v in future.result(timeout=10).items()}
        for resource, future in futures.items()
    }


def test_plan_names_partitions_and_policies(make_settings):
    settings = make_settings(partitions=6, replication_factor=1)
    plan = topic_plan(settings)
    assert [spec.role for spec in plan] == list(ROLES)
    assert [spec.name for spec in plan] == [getattr(settings.topics, r) for r in ROLES]
    assert {spec.partitions for spec in plan} == {6}
    assert {spec.replication for spec in plan} == {1}
    policy = {spec.role: spec.config["cleanup.policy"] for spec in plan}
    assert policy == {
        "faults": "delete", "quality": "delete", "customers": "compact", "scores": "compact",
        "care": "delete", "marketing": "delete", "deadletter": "delete", "fault_impact": "compact",
    }
    for spec in plan:
        assert {"cleanup.policy", "retention.ms", "retention.bytes"} <= set(spec.config)
        assert spec.config["retention.bytes"] == "-1"
        if spec.compacted:
            assert spec.config["retention.ms"] == "-1"
        else:
            assert spec.config["retention.ms"] == str(7 * 24 * 3600 * 1000)


def test_ensure_creates_every_topic_with_its_config(request, settings):
    assert check_topics(settings)  # nothing exists yet: each topic reported missing
    created = ensure_topics(settings)
    assert created == [getattr(settings.topics, role) for role in ROLES]

    metadata = AdminClient(settings.confluent_config()).list_topics(timeout=10)
    for name in created:
        assert len(metadata.topics[name].partitions) == settings.partitions

    configs = _configs(settings, created)
    for spec in topic_plan(settings):
        # Tansu returns only the configs given at creation: all of ours must be there.
        for key, value in spec.config.items():
            assert configs[spec.name].get(key) == value, (spec.name, key)

    assert check_topics(settings) == []
    assert ensure_topics(settings) == []  # idempotent: nothing more to create
    if request.node.callspec.params["broker"] == "kafka":
        # Apache Kafka answers DescribeConfigs fully: the broker's defaults beside ours
        assert {"segment.bytes", "min.insync.replicas", "max.message.bytes"} <= set(configs[created[0]])


def test_compacted_topic_that_also_deletes_old_records_is_refused(settings):
    plan = topic_plan(settings)
    leaky = [
        TopicSpec(s.name, s.partitions, 1, {"cleanup.policy": "compact,delete", "retention.ms": "86400000"},
                  s.role) if s.role == "customers" else s
        for s in plan
    ]
    ensure_topics(settings, leaky)
    problems = check_topics(settings)
    assert len(problems) == 1 and "retention.ms=86400000" in problems[0] and settings.topics.customers \
        in problems[0], problems


def test_already_existing_topic_is_fine(settings):
    first = topic_plan(settings)[0]
    assert ensure_topics(settings, [first]) == [first.name]
    # a plan that includes it again: the others are created, it is left alone
    assert ensure_topics(settings) == [spec.name for spec in topic_plan(settings)[1:]]


def test_check_reports_missing_and_partition_mismatch(settings):
    plan = {spec.role: spec for spec in topic_plan(settings)}
    quality = plan["quality"]
    ensure_topics(
        settings,
        [spec for role, spec in plan.items() if role not in ("quality", "scores")]
        + [TopicSpec(quality.name, quality.partitions + 2, 1, topic_config("quality"), "quality")],
    )
    problems = check_topics(settings)
    assert len(problems) == 2, problems
    missing, mismatch = problems
    assert settings.topics.scores in missing and "missing" in missing
    assert "co-partitioned" in mismatch
    assert settings.topics.quality in mismatch and settings.topics.customers in mismatch


def test_check_reports_wrong_cleanup_policy(settings):
    plan = topic_plan(settings)
    wrong = [
        TopicSpec(s.name, s.partitions, 1, topic_config("faults"), s.role) if s.role == "scores" else s
        for s in plan
    ]
    ensure_topics(settings, wrong)
    problems = check_topics(settings)
    assert len(problems) == 1 and "cleanup.policy=delete" in problems[0], problems


def test_check_unreachable_broker(make_settings):
    from conftest import free_port

    settings = make_settings(broker=f"kafka://127.0.0.1:{free_port()}")
    problems = check_topics(settings, timeout=1)
    assert len(problems) == 1 and "cannot reach" in problems[0]

"""The wire contract's seven topics and cx.fault_impact, as data, and their creation and checking.

Every topic is created with its configuration stated explicitly: some brokers
(the bundled Tansu among them) report through ``DescribeConfigs`` only what was
given at creation, and a topic's policy should never depend on a broker default.

Faust creates its own internal topics (changelogs, repartition topics); they
are not listed here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from cxstream.ops.settings import Settings

__all__ = [
    "TopicSpec",
    "TopicError",
    "ROLES",
    "COMPACTED_ROLES",
    "RETENTION_MS",
    "topic_plan",
    "ensure_topics",
    "check_topics",
    "admin_client",
]

#: Contract roles, in the order of the contract's table (``settings.topics.<role>``).
ROLES: tuple[str, ...] = ("faults", "quality", "customers", "scores", "care", "marketing", "deadletter",
                          "fault_impact")
#: Roles whose topic is compacted: latest value per key, tombstones erase.
COMPACTED_ROLES: frozenset[str] = frozenset({"customers", "scores", "fault_impact"})
#: Time-based retention of the delete-policy topics: 7 days.
RETENTION_MS = 7 * 24 * 3600 * 1000
#: How long a tombstone stays readable on a compacted topic: 1 day.
DELETE_RETENTION_MS = 24 * 3600 * 1000
#: Topics that must have the same partition count (faust joins them by key).
CO_PARTITIONED: tuple[str, ...] = ("quality", "customers")


class TopicError(RuntimeError):
    """A topic could not be created or did not appear in time."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic as cxstream wants it."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict, hash=False)
    role: str = ""

    @property
    def compacted(self) -> bool:
        return self.config.get("cleanup.policy") == "compact"

    def new_topic(self) -> NewTopic:
        return NewTopic(
            self.name,
            num_partitions=self.partitions,
            replication_factor=self.replication,
            config=dict(self.config),
        )


def topic_config(role: str) -> dict[str, str]:
    """The explicit configuration of the topic of ``role``."""
    if role in COMPACTED_ROLES:
        return {
            "cleanup.policy": "compact",
            "retention.ms": "-1",
            "retention.bytes": "-1",
            "delete.retention.ms": str(DELETE_RETENTION_MS),
        }
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(RETENTION_MS),
        "retention.bytes": "-1",
    }


def topic_plan(settings: Settings) -> list[TopicSpec]:
    """The contract's seven topics and cx.fault_impact, with names, partitions and configs from ``settings``."""
    return [
        TopicSpec(
            name=getattr(settings.topics, role),
            partitions=settings.partitions,
            replication=settings.replication_factor,
            config=topic_config(role),
            role=role,
        )
        for role in ROLES
    ]


def admin_client(settings: Settings) -> AdminClient:
    """An AdminClient for ``settings`` (librdkafka's own log kept quiet)."""
    config: dict[str, object] = dict(settings.confluent_config())
    config.setdefault("log_level", 3)
    return AdminClient(config)


def _partition_counts(admin: AdminClient, timeout: float) -> dict[str, int]:
    metadata = admin.list_topics(timeout=timeout)
    return {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if topic.error is None or topic.error.code() == KafkaError.NO_ERROR
    }


def ensure_topics(
    settings: Settings, specs: Iterable[TopicSpec] | None = None, timeout: float = 30
) -> list[str]:
    """Create the topics of ``specs`` (default: :func:`topic_plan`) that are missing.

    A topic that already exists is left as it is (``check_topics`` reports a
    mismatch). Returns the names this call created, after waiting until each
    planned topic is visible in the cluster metadata (created ones with their
    partition count). Raises :class:`TopicError` on a failure or at the deadline.
    """
    plan = list(topic_plan(settings) if specs is None else specs)
    deadline = time.monotonic() + timeout
    admin = admin_client(settings)
    try:
        existing = _partition_counts(admin, timeout=max(0.1, deadline - time.monotonic()))
    except KafkaException as error:
        raise TopicError(f"cannot list topics on {settings.bootstrap}: {error}") from None
    missing = [spec for spec in plan if spec.name not in existing]
    created: list[str] = []
    if missing:
        request_timeout = max(1.0, deadline - time.monotonic())
        futures = admin.create_topics(
            [spec.new_topic() for spec in missing],
            request_timeout=request_timeout,
            operation_timeout=request_timeout,
        )
        failures = []
        for name, future in futures.items():
            try:
                future.result(timeout=max(0.1, deadline - time.monotonic()))
                created.append(name)
            except KafkaException as error:
                kafka_error = error.args[0] if error.args else None
                if isinstance(kafka_error, KafkaError) and (
                    kafka_error.code() == KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    continue  # created concurrently by someone else: fine
                failures.append(f"{name}: {error}")
            except Exception as error:  # concurrent.futures.TimeoutError and the like
                failures.append(f"{name}: {type(error).__name__}: {error}")
        if failures:
            raise TopicError("could not create topics: " + "; ".join(failures))
    wanted = {spec.name: (spec.partitions if spec.name in created else 1) for spec in plan}
    _wait_visible(admin, wanted, deadline, timeout)
    order = {spec.name: index for index, spec in enumerate(plan)}
    return sorted(created, key=order.__getitem__)


def _wait_visible(admin: AdminClient, wanted: dict[str, int], deadline: float, timeout: float) -> None:
    """Wait until every topic in ``wanted`` shows at least that many partitions."""
    lacking: dict[str, str] = {}
    while True:
        try:
            counts = _partition_counts(admin, timeout=max(0.1, min(2.0, deadline - time.monotonic())))
            lacking = {
                name: "absent" if name not in counts else f"{counts[name]} of {need} partitions"
                for name, need in wanted.items()
                if counts.get(name, 0) < need
            }
            if not lacking:
                return
        except KafkaException as error:
            lacking = {"(metadata)": str(error)}
        if time.monotonic() >= deadline:
            detail = ", ".join(f"{name} {state}" for name, state in lacking.items())
            raise TopicError(f"topics not visible after {timeout:g} s: {detail}")
        time.sleep(0.05)  # back-off between metadata polls, not a synchronisation sleep


def check_topics(settings: Settings, timeout: float = 10) -> list[str]:
    """Problems with the contract's topics, one readable sentence each ([] when all is well).

    Reports a missing topic, co-partitioned topics (quality and customers)
    whose partition counts differ, and a ``cleanup.policy`` that contradicts
    the plan when the broker reports one (configs it cannot read are skipped).
    An unreachable broker is reported as a problem too.
    """
    plan = topic_plan(settings)
    admin = admin_client(settings)
    try:
        counts = _partition_counts(admin, timeout=timeout)
    except KafkaException as error:
        return [f"cannot reach the broker at {settings.bootstrap}: {error}"]
    problems: list[str] = []
    by_role = {spec.role: spec for spec in plan}
    for spec in plan:
        if spec.name not in counts:
            problems.append(
                f"topic {spec.name!r} ({spec.role}) is missing; "
                f"create it with {spec.partitions} partitions and {spec.config}"
            )
    present = [by_role[role] for role in CO_PARTITIONED if by_role[role].name in counts]
    if len(present) == len(CO_PARTITIONED):
        sizes = {spec.name: counts[spec.name] for spec in present}
        if len(set(sizes.values())) > 1:
            shown = ", ".join(f"{name} has {size}" for name, size in sizes.items())
            problems.append(
                f"topics {' and '.join(repr(n) for n in sizes)} must be co-partitioned "
                f"(same partition count) but {shown} partitions"
            )
    problems.extend(_policy_problems(admin, [s for s in plan if s.name in counts], timeout))
    return problems


def _policy_problems(admin: AdminClient, specs: list[TopicSpec], timeout: float) -> list[str]:
    if not specs:
        return []
    problems = []
    try:
        futures = admin.describe_configs(
            [ConfigResource(ConfigResource.Type.TOPIC, spec.name) for spec in specs],
            request_timeout=timeout,
        )
        results = {resource.name: future for resource, future in futures.items()}
        for spec in specs:
            configs = results[spec.name].result(timeout=timeout)
            entry = configs.get("cleanup.policy")
            wanted = spec.config.get("cleanup.policy")
            if entry is not None and entry.value is not None and wanted:
                policies = set(entry.value.split(","))
                if wanted not in policies:
                    problems.append(
                        f"topic {spec.name!r} ({spec.role}) has cleanup.policy={entry.value}, "
                        f"expected {wanted}"
                    )
                elif wanted == "compact" and "delete" in policies:
                    # compact,delete: the latest record of a key is deleted too once old
                    # enough, so a customer (or score, or fault impact) would be forgotten
                    retention = configs.get("retention.ms")
                    if retention is not None and retention.value not in (None, "-1"):
                        problems.append(
                            f"topic {spec.name!r} ({spec.role}) has cleanup.policy={entry.value} with "
                            f"retention.ms={retention.value}: its latest records would be deleted; "
                            f"set retention.ms=-1 or cleanup.policy=compact"
                        )
    except Exception:
        # No DescribeConfigs (old broker, missing ACL): the policy cannot be
        # verified, which is not itself a problem with the topics.
        pass
    return problems


#: The worker's internal topics, by the name they get from the app id: they
#: follow the input topics' partition count (contract v2 Topic layout).
def internal_topics(settings: Settings) -> list[str]:
    app = settings.app_id
    return [changelog_topic(app), repartition_topic(app)]


def changelog_topic(app_id: str) -> str:
    """The customer state's changelog (faust names it after the app and the table)."""
    return f"{app_id}-customer_state-changelog"


def repartition_topic(app_id: str) -> str:
    """Where records that arrive without their customer id as key are forwarded."""
    return f"{app_id}-unkeyed-input"


def input_layout(settings: Settings, timeout: float = 10) -> tuple[int | None, list[str]]:
    """The partition count the worker must follow (that of the co-partitioned
    input topics, or None when neither exists yet) and the problems that stop
    start-up, each one line: inputs that disagree, or an internal topic left
    with another count (an upgrade or a changed layout)."""
    admin = admin_client(settings)
    try:
        counts = _partition_counts(admin, timeout=timeout)
    except KafkaException as error:
        return None, [f"cannot reach the broker at {settings.bootstrap}: {error}"]
    names = [getattr(settings.topics, role) for role in CO_PARTITIONED]
    present = {name: counts[name] for name in names if name in counts}
    if len(set(present.values())) > 1:
        shown = " and ".join(f"{name!r} has {count}" for name, count in present.items())
        return None, [f"topics {shown} partitions, but both are keyed by customer id and must have the "
                      "same count: recreate one of them (or repartition it) with the other's count"]
    if not present:
        return None, []
    count = next(iter(present.values()))
    problems = []
    for name in internal_topics(settings):
        if name in counts and counts[name] != count:
            problems.append(
                f"internal topic {name!r} has {counts[name]} partitions but the input topics have {count}: "
                f"after changing the input layout, delete {name!r} (the state is rebuilt from the inputs "
                f"only if they are retained; otherwise keep the old partition count) or use a new "
                f"CXSTREAM_APP_ID")
    return count, problems

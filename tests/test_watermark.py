"""The probe that decides the changelog seal (cxstream/ops/watermark.py), on both brokers.

The worker runs it once faust has made its changelog topic (CXSTREAM_CHANGELOG_SEAL=auto);
the restart tests then show recovery after SIGKILL on each broker with what it chose.
"""

from __future__ import annotations

import pytest

from conftest import on_both_brokers
from cxstream.ops.topics import TopicSpec, changelog_topic, ensure_topics
from cxstream.ops.watermark import ProbeFailed, high_watermark_undercounts

pytestmark = on_both_brokers

# what each broker is known to do (NOTES.md): the probe must find it out by itself
UNDERCOUNTS = {"tansu": True, "kafka": False}


def test_the_probe_finds_out_how_the_broker_reports_its_high_watermark(request, settings):
    topic = changelog_topic(settings.app_id)
    ensure_topics(settings, [TopicSpec(topic, partitions=4, replication=1, config={"cleanup.policy": "compact"})])
    kind = request.node.callspec.params["broker"]
    assert high_watermark_undercounts(settings, topic) is UNDERCOUNTS[kind]
    assert high_watermark_undercounts(settings, topic, partition=3) is UNDERCOUNTS[kind]


def test_a_probe_that_cannot_write_says_where(settings):
    topic = changelog_topic(settings.app_id)
    ensure_topics(settings, [TopicSpec(topic, partitions=1, replication=1, config={"cleanup.policy": "compact"})])
    with pytest.raises(ProbeFailed, match=r"changelog\[5\]"):
        high_watermark_undercounts(settings, topic, partition=5, timeout_s=5)

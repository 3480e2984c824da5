"""The penalty table the unit tests compute their expected numbers with.

Pinned here so that tuning the shipped table (cxstream/domain/default_rules.yaml)
does not move every expected number; the worked example in docs/scoring.md is
checked against the shipped table separately.
"""

TEST_METRICS = {
    "call_dropped": {"dimension": "voice", "points": 25},
    "call_setup_failed": {"dimension": "voice", "points": 20},
    "mos": {"dimension": "voice", "below": 3.6, "per_unit": 30, "max": 60},
    "message_failed": {"dimension": "messaging", "points": 20},
    "video_stall_ratio": {"dimension": "video", "above": 0.02, "per_unit": 200, "max": 50},
    "latency_ms": {"dimension": "service", "above": 150, "per_unit": 0.1, "max": 30},
    "jitter_ms": {"dimension": "service", "above": 30, "per_unit": 0.5, "max": 20},
    "packet_loss_pct": {"dimension": "service", "above": 1, "per_unit": 5, "max": 40},
    "throughput_mbps": {"dimension": "service", "below": 5, "per_unit": 6, "max": 30},
}

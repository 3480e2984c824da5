"""The demo's scenario through the engine, offline (no broker): the synthetic
operator's records in, CloudEvents out, read by the demo's own end-of-run checks.

Its site outage has a correlated cell alarm that joins the same outage episode
for the customers of that cell, and lasts more than 4 h: contract v2 gives each
customer of the site one ``service_credit``, not one per alarm (issue 11: the
demo reported 399 credits for 300 customers, and its check said ok).
"""

from __future__ import annotations

import argparse
import copy
from collections import Counter

import pytest

from cxstream.domain.engine import Engine, InputRecord
from cxstream.domain.rules import load_rules
from cxstream.ops.settings import Settings
from cxstream.outputs.cloudevents import cloudevent
from cxstream.simulate.demo import DEMO_MALFORMED_RATIO, Demo, _milestone_steps
from cxstream.simulate.operator import SyntheticOperator

EVENTS = 20_000
SOURCE = "urn:cxstream:default"


@pytest.fixture(scope="module")
def scenario():
    operator = SyntheticOperator(seed=7, customers=3000, malformed_ratio=DEMO_MALFORMED_RATIO)
    snapshot = len(operator.customers_records())
    description = operator.describe(EVENTS)
    engine = Engine(load_rules())
    engine.go_live()
    offsets: Counter = Counter()
    events = []
    for sim in operator.stream(EVENTS):
        record = InputRecord(sim.role, sim.role, 0, offsets[sim.role], sim.key, sim.value,
                             round(sim.event_time * 1000) / 1000.0)
        offsets[sim.role] += 1
        if sim.role == "faults":
            engine.apply_fault(record)
        else:
            engine.process([record])
            for customer_id, forwarded in engine.take_forwards():  # as the worker re-produces them
                engine.process([InputRecord(forwarded.source, forwarded.topic, forwarded.partition, forwarded.offset,
                                            customer_id.encode(), forwarded.value, forwarded.timestamp, True)])
        events += [cloudevent(f, SOURCE) for f in engine.drain()[0]]
    return description, snapshot, events


def checks_of(scenario, events) -> dict[str, tuple[str, str]]:
    description, snapshot, _ = scenario
    demo = Demo(Settings(), argparse.Namespace(duration=10.0, rate=2000.0, quiet=True))
    demo.description = description
    demo.steps = _milestone_steps(description, EVENTS)
    demo.snapshot_size = snapshot
    demo.result = {"count": snapshot + EVENTS}  # everything produced
    care = [e for e in events if e["data"]["channel"] == "care"]
    marketing = [e for e in events if e["data"]["channel"] == "marketing"]
    return {text.split(":")[0]: (state, text) for state, text in demo._scenario_checks(care, marketing)}


def test_each_customer_of_the_outage_gets_one_credit_listing_every_alarm_of_its_episode(scenario) -> None:
    description, _, events = scenario
    outage = description["outage"]
    assert description["service_credit_expected"] and outage.get("cell_alarm_id")
    credits = [e for e in events if e["type"] == "io.cxstream.trigger.service_credit"]
    per_customer = Counter(e["subject"] for e in credits)
    assert set(per_customer) == set(outage["customer_ids"]) and set(per_customer.values()) == {1}
    both = {e["subject"] for e in credits if set(e["data"]["faults"]) >= {outage["alarm_id"], outage["cell_alarm_id"]}}
    assert both  # the cell's customers: two alarms in one episode, one credit
    restored = {e["subject"]: e for e in events if e["type"] == "io.cxstream.trigger.service_restored"}
    for credit in credits:  # at the episode's end, with the episode's alarms
        assert credit["time"] == restored[credit["subject"]]["time"]
        assert credit["data"]["faults"] == restored[credit["subject"]]["data"]["faults"]


def test_the_demos_credit_check_passes_and_fails_a_second_credit_for_one_customer(scenario) -> None:
    _, _, events = scenario
    checks = checks_of(scenario, events)
    state, text = checks["service_credit"]
    assert state == "ok" and "300 of 300 customers" in text and "0 credited more than once" in text
    assert {s for s, _ in checks.values()} == {"ok"}, checks
    # a second credit for one customer (another id: as a credit per alarm had) fails the check
    credit = next(e for e in events if e["type"] == "io.cxstream.trigger.service_credit")
    second = copy.deepcopy(credit)
    second["id"] = "another-credit"
    state, text = checks_of(scenario, events + [second])["service_credit"]
    assert state == "fail" and "1 credited more than once" in text
    # a redelivered copy (the same id) is the same credit
    assert checks_of(scenario, events + [copy.deepcopy(credit)])["service_credit"][0] == "ok"

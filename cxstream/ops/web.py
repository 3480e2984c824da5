"""HTTP surface on the worker's web port (faust's aiohttp server).

``/healthz`` (the process is alive), ``/readyz`` (assigned, restored, alarm
registry caught up), ``/metrics`` (Prometheus text), ``/customers/{id}`` (the
score document) and the TMF642 listener that writes pushed alarm notifications
to the faults topic, answering 201 only once the broker has them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from faust.web import Request, Response, View

from ..models.alarm import parse_fault
from ..models.rejection import InvalidRecord
from ..outputs.scores import score_document

if TYPE_CHECKING:
    from ..stream.worker import CxWorker

PROMETHEUS_TEXT = "text/plain; version=0.0.4"
TMF642_VERSIONS = ("v4", "v5")


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:] if name else name


def register_routes(worker: "CxWorker") -> None:
    app = worker.app

    @app.page("/healthz")
    async def healthz(web, request: Request) -> Response:
        if worker.failure is not None:
            return web.json({"status": "failing", "reason": worker.failure}, status=503)
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web, request: Request) -> Response:
        feed = worker.feed
        body = {
            "ready": worker.ready,
            "partitions_settled": worker._settled,
            "alarm_feed_caught_up": bool(feed and feed.caught_up.is_set()),
            "alarm_feed_lag": feed.lag if feed else None,
            "customers": len(worker.engine.customers),
        }
        return web.json(body, status=200 if worker.ready else 503)

    @app.page("/metrics")
    async def metrics(web, request: Request) -> Response:
        worker.metrics.customers.set(len(worker.engine.customers))
        worker.metrics.active_faults.set(worker.engine.alarms.active_count)
        worker.metrics.ready.set(1 if worker.ready else 0)
        return web.bytes(worker.metrics.exposition(), content_type=PROMETHEUS_TEXT)

    @app.page("/customers/{customer_id}")
    async def customer(web, request: Request, customer_id: str) -> Response:
        state = worker.engine.state(customer_id)
        if state is None:
            return web.json({"error": f"customer {customer_id!r} is not known"}, status=404)
        return web.bytes(orjson.dumps(score_document(worker.engine, state)), content_type="application/json")

    @app.page("/tmf-api/alarmManagement/{version}/listener/{event_name}")
    class Listener(View):
        async def post(self, request: Request, version: str, event_name: str) -> Response:
            if version not in TMF642_VERSIONS:
                return self.json({"error": f"TMF642 version {version!r} is not served; use v4 or v5"},
                                 status=404)
            body = await request.read()
            try:
                notification = parse_fault(body)
                if notification.event_type == "Alarm":
                    raise InvalidRecord("the listener takes a TMF642 notification envelope "
                                        "(eventType, event), not a bare alarm")
                if _lower_camel(notification.event_type) != event_name:
                    raise InvalidRecord(
                        f"eventType {notification.event_type!r} does not match the listener path "
                        f"{event_name!r} (expected {_lower_camel(notification.event_type)!r})")
                reason = worker.engine.alarms.check(notification)
                if reason is not None:
                    raise InvalidRecord(reason)
            except InvalidRecord as exc:
                return self.json({"error": exc.reason}, status=400)
            key = notification.changes[0].alarm_id.encode() if notification.changes else None
            try:
                await worker._sink().produce_acknowledged(worker.settings.topics.faults, key, body)
            except Exception as exc:  # the broker did not take it: the sender must retry
                return self.json({"error": f"not stored, retry later: {exc}"}, status=503)
            return self.json({"accepted": True, "eventType": notification.event_type,
                              "alarms": [c.alarm_id for c in notification.changes]}, status=201)

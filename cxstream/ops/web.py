"""HTTP surface on the worker's web port (faust's aiohttp server).

``/healthz`` (the process is alive), ``/readyz`` (assigned, restored, alarm
registry caught up), ``/metrics`` (Prometheus text), ``/customers/{id}`` (the
score document, from any worker: see below) and the TMF642 listener that
writes pushed alarm notifications to the faults topic, answering 201 only once
the broker has them.

Routing ``/customers/{id}``. A customer lives on the worker that owns its
partition: murmur2 of the id's bytes, as every producer of keyed input must
place it (NOTES.md), and as the state table's changelog is partitioned. The
owner of each partition, with its web address (``CXSTREAM_WEB_ADVERTISED_URL``,
faust's ``canonical_url``), is in the assignment faust's partition assignor
hands every member at each rebalance. A worker that does not hold the customer
asks the owner once; the forwarded request carries ``X-Cxstream-Routed-By`` and
is answered from the owner's memory only, never forwarded again. The owner's
answer (200, 404 …) is passed back as it is. When no one can answer for sure —
no assignment yet, a rebalance under way, the partition being restored, the
owner unreachable — the answer is 503 with the reason and ``Retry-After``.
Every answer names the worker that decided it in ``X-Cxstream-Served-By``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import aiohttp
import orjson
from aiokafka.partitioner import murmur2
from faust.web import Request, Response, View

from ..models.alarm import parse_fault
from ..models.rejection import InvalidRecord
from ..domain.impact import impact_order
from ..models.common import format_time
from ..outputs.scores import care_view, score_document

if TYPE_CHECKING:
    from ..stream.worker import CxWorker

PROMETHEUS_TEXT = "text/plain; version=0.0.4"
TMF642_VERSIONS = ("v4", "v5")
ROUTED_BY = "X-Cxstream-Routed-By"  # on a forwarded request: the worker that forwarded it
SERVED_BY = "X-Cxstream-Served-By"  # on a /customers answer: the worker that decided it
ROUTE_TIMEOUT_S = 5.0
RETRY_AFTER_S = "1"


def customer_partition(customer_id: str, partitions: int) -> int:
    """The partition of a customer id: murmur2 of its bytes, as Java clients,
    aiokafka/faust and our producers (``murmur2_random``) place a key."""
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


class Unroutable(Exception):
    """No worker can answer for sure right now (the message says why)."""


def partition_owners(worker: "CxWorker") -> dict[int, str]:
    """Partition -> advertised web URL of its owner, from the last assignment."""
    from ..stream.worker import STATE_TABLE

    owners: dict[int, str] = {}
    try:
        metadata = worker.app.router.table_metadata(STATE_TABLE)
    except Exception:  # no table, no assignor yet
        return owners
    for url, topics in metadata.items():
        for partitions in topics.values():
            for partition in partitions:
                owners[partition] = str(url).rstrip("/")
    return owners


def locate(worker: "CxWorker", customer_id: str) -> tuple[int, str]:
    """(partition, owner URL) of a customer; :class:`Unroutable` when unknown."""
    owners = partition_owners(worker)
    if not owners:
        raise Unroutable("no partition assignment yet (joining the consumer group)")
    count = max(owners) + 1
    if len(owners) != count:
        missing = sorted(set(range(count)) - set(owners))
        raise Unroutable(f"the assignment names no owner for partitions {missing} (rebalancing)")
    partition = customer_partition(customer_id, count)
    return partition, owners[partition]


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:] if name else name


def register_routes(worker: "CxWorker") -> None:
    from ..ui.routes import register_ui

    app = worker.app
    register_ui(worker)  # the pages (/ui/...), rendered from the JSON answers below

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
            "customers_in_use": worker.engine.in_use,  # held as objects; the rest as stored bytes
        }
        return web.json(body, status=200 if worker.ready else 503)

    @app.page("/metrics")
    async def metrics(web, request: Request) -> Response:
        worker.metrics.customers.set(len(worker.engine.customers))
        worker.metrics.active_faults.set(worker.engine.alarms.active_count)
        worker.metrics.ready.set(1 if worker.ready else 0)
        return web.bytes(worker.metrics.exposition(), content_type=PROMETHEUS_TEXT)

    def own_url() -> str:
        return str(app.conf.canonical_url).rstrip("/")

    def served(response: Response, by: str) -> Response:
        response.headers[SERVED_BY] = by
        return response

    def unavailable(web, reason: str) -> Response:
        return served(web.json({"error": f"cannot answer now, retry: {reason}"}, status=503,
                               headers={"Retry-After": RETRY_AFTER_S}), own_url())

    def not_known(web, customer_id: str, partition: int) -> Response:
        return served(web.json({"error": f"customer {customer_id!r} is not known",
                                "partition": partition}, status=404), own_url())

    def holds(partition: int) -> bool:
        """This worker owns the partition and has restored its customers."""
        return worker._settled and partition in worker._held

    async def forward(web, request: Request, owner: str) -> Response:
        url = owner + request.rel_url.raw_path_qs
        try:
            async with app.http_client.get(
                url, headers={ROUTED_BY: own_url(), "Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=ROUTE_TIMEOUT_S), allow_redirects=False,
            ) as answer:
                body = await answer.read()
                by = answer.headers.get(SERVED_BY, owner)
                retry = answer.headers.get("Retry-After")
                headers = {"Retry-After": retry} if retry else None
                return served(web.bytes(body, content_type=answer.content_type, status=answer.status,
                                        headers=headers), by)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return unavailable(web, f"the owner {owner} did not answer ({type(exc).__name__}: {exc})")

    @app.page("/customers/{customer_id}")
    async def customer(web, request: Request, customer_id: str) -> Response:
        state = worker.engine.state(customer_id)
        if state is not None:
            document = score_document(worker.engine, state)
            if request.query.get("view") == "care":
                document["care"] = care_view(worker.engine, state)
            return served(web.bytes(orjson.dumps(document), content_type="application/json"), own_url())
        try:
            partition, owner = locate(worker, customer_id)
        except Unroutable as exc:
            return unavailable(web, str(exc))
        if owner == own_url():
            if holds(partition):
                return not_known(web, customer_id, partition)
            return unavailable(web, f"partition {partition} is being restored here")
        forwarded_by = request.headers.get(ROUTED_BY)
        if forwarded_by is not None:
            # asked by another worker: answer from here or not at all (no loops)
            return unavailable(web, f"{forwarded_by} routed partition {partition} here, but its owner "
                                    f"is now {owner} (rebalancing)")
        return await forward(web, request, owner)

    # --- fault impact ---------------------------------------------------
    # Counts come from the partials of every partition, which every worker
    # reads (stream/impact_feed.py): any worker answers alone. Only the
    # customer ids of a fault live with the owners of their partitions; a page
    # of them is gathered from those owners (``/faults/{id}/members``).

    def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
        try:
            value = int(request.query.get(name, default))
        except ValueError:
            raise ValueError(f"{name} must be an integer") from None
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low} and {high}")
        return value

    @app.page("/faults")
    async def faults(web, request: Request) -> Response:
        if not worker.impact_ready:
            return unavailable(web, "the fault-impact view is still catching up")
        cleared = request.query.get("cleared", "") in ("1", "true", "yes")
        documents = [worker.fault_document(alarm_id)
                     for alarm_id, alarm in list(worker.engine.alarms.alarms.items())
                     if alarm.active or cleared]
        documents.sort(key=impact_order)
        # complete: every partition has an owner now; during a rebalance the
        # partials of ownerless partitions are their last owner's, a moment old
        owners = partition_owners(worker)
        complete = bool(owners) and set(owners) == set(range(worker.settings.partitions))
        return served(web.bytes(orjson.dumps({"faults": documents, "count": len(documents),
                                              "complete": complete, "as_of": format_time(time.time())}),
                                content_type="application/json"), own_url())

    @app.page("/faults/{alarm_id}")
    async def fault(web, request: Request, alarm_id: str) -> Response:
        if not worker.impact_ready:
            return unavailable(web, "the fault-impact view is still catching up")
        document = worker.fault_document(alarm_id)
        if document is None:
            return served(web.json({"error": f"fault {alarm_id!r} is not known (never raised, or "
                                             "cleared more than 24 h ago)"}, status=404), own_url())
        try:
            offset = _int(request, "offset", 0, 0, 10**9)
            limit = _int(request, "limit", 100, 1, 1000)
        except ValueError as exc:
            return served(web.json({"error": str(exc)}, status=400), own_url())
        # the page spans partitions in order, each partition's ids sorted; the
        # partials say how many each partition has, so only the owners of the
        # partitions the page touches are asked
        counts = sorted((p["partition"], p["total"]) for p in worker.impact_view.of(alarm_id)
                        if p.get("raised_at") in (None, worker.engine.alarms.alarms[alarm_id].raised_at))
        items: list[str] = []
        start = 0
        for partition, count in counts:
            if len(items) >= limit:
                break
            if offset + len(items) < start + count:
                skip = max(0, offset - start)
                try:
                    ids = await members(alarm_id, partition)
                except Unroutable as exc:
                    return unavailable(web, str(exc))
                items.extend(ids[skip:skip + limit - len(items)])
            start += count
        document["customers"] = {"items": items, "offset": offset, "limit": limit,
                                 "total": sum(count for _, count in counts)}
        return served(web.bytes(orjson.dumps(document), content_type="application/json"), own_url())

    async def members(alarm_id: str, partition: int) -> list[str]:
        """The ids of one partition's customers impacted by the fault, from its owner."""
        owner = partition_owners(worker).get(partition)
        if owner is None:
            raise Unroutable(f"partition {partition} has no owner (rebalancing)")
        if owner == own_url():
            if not holds(partition):
                raise Unroutable(f"partition {partition} is being restored here")
            return worker.engine.impact.customers_on(alarm_id, partition)
        url = f"{owner}/faults/{quote(alarm_id, safe='')}/members?partition={partition}"
        try:
            async with app.http_client.get(
                url, headers={ROUTED_BY: own_url()}, timeout=aiohttp.ClientTimeout(total=ROUTE_TIMEOUT_S),
            ) as answer:
                if answer.status != 200:
                    raise Unroutable(f"{owner} could not list partition {partition} ({answer.status})")
                return orjson.loads(await answer.read())["customers"]
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unroutable(f"the owner {owner} did not answer ({type(exc).__name__}: {exc})") from None

    @app.page("/faults/{alarm_id}/members")
    async def fault_members(web, request: Request, alarm_id: str) -> Response:
        try:
            partition = _int(request, "partition", -1, 0, 10**6)
        except ValueError as exc:
            return served(web.json({"error": str(exc)}, status=400), own_url())
        if not holds(partition):
            return unavailable(web, f"partition {partition} is not held here")
        ids = worker.engine.impact.customers_on(alarm_id, partition)
        return served(web.json({"alarm_id": alarm_id, "partition": partition, "customers": ids}), own_url())

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

"""The pages' routes on the worker's web port.

``register_ui(worker)`` adds:

- ``/ui`` and ``/ui/`` → redirect to ``/ui/faults``;
- ``/ui/faults``: the fault-impact table (``GET /faults``; ``?cleared=1`` adds the
  recently cleared faults);
- ``/ui/faults/{alarm_id}``: one fault and its impacted customers, paged
  (``GET /faults/{alarm_id}?offset=&limit=``);
- ``/ui/customers/{customer_id}``: the care view (``GET /customers/{id}?view=care``);
- ``/ui/customers?id=…``: the top bar's search form, a redirect to the above.

Each page gets its data from the JSON endpoint of the same worker, over HTTP
on its own web port, so a page is answered from any worker exactly as the
JSON is (``/customers/{id}`` routes to the owner of the customer's
partition; ``/faults`` combines every worker's view). The JSON's 404 becomes a
friendly 404 page, its 503 a "not ready yet" page that reloads itself (503
too); anything else unexpected a 502 page naming what happened.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from faust.web import Request, Response

from . import pages

if TYPE_CHECKING:
    from ..stream.worker import CxWorker

FETCH_TIMEOUT_S = 10.0
MAX_PAGE_LIMIT = 1000
HTML_HEADERS = {"Cache-Control": "no-store"}


def local_base_url(web_host: str, web_port: int) -> str:
    """How this process reaches its own web server: the bound address, loopback for a wildcard."""
    host = web_host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{web_port}"


def _int_param(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        number = default
    return max(low, min(high, number))


def _reason(body: Any, raw: bytes) -> str:
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return raw[:300].decode("utf-8", "replace")


def register_ui(worker: "CxWorker") -> None:
    """Add the ``/ui/…`` pages to the worker's faust web server."""
    app = worker.app
    base = local_base_url(worker.settings.web_host, worker.settings.web_port)

    async def fetch(path: str) -> tuple[int, Any, bytes]:
        """(status, parsed JSON or None, raw body) of one of our JSON endpoints; 599 when unreachable."""
        try:
            async with app.http_client.get(
                base + path, headers={"Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S), allow_redirects=False,
            ) as answer:
                raw = await answer.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return 599, None, f"{type(exc).__name__}: {exc}".encode()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        return answer.status, body, raw

    def html(web, text: str, status: int = 200) -> Response:
        return web.html(text, status=status, headers=dict(HTML_HEADERS))

    def redirect(web, location: str) -> Response:
        return web.html(f'<a href="{pages._e(location)}">{pages._e(location)}</a>', status=302,
                        headers={"Location": location, **HTML_HEADERS})

    def render(web, status: int, body: Any, raw: bytes, ok, kind: str, ident: str) -> Response:
        if status == 200 and isinstance(body, dict):
            return html(web, ok(body))
        if status == 404:
            return html(web, pages.not_found_page(kind, ident, _reason(body, raw)), status=404)
        if status == 503:
            return html(web, pages.not_ready_page(_reason(body, raw)), status=503)
        return html(web, pages.error_page(status, _reason(body, raw)), status=502)

    @app.page("/ui")
    async def ui_root(web, request: Request) -> Response:
        return redirect(web, "/ui/faults")

    @app.page("/ui/")
    async def ui_root_slash(web, request: Request) -> Response:
        return redirect(web, "/ui/faults")

    @app.page("/ui/faults")
    async def ui_faults(web, request: Request) -> Response:
        cleared = request.query.get("cleared", "") in ("1", "true", "yes")
        status, body, raw = await fetch("/faults?cleared=1" if cleared else "/faults")
        return render(web, status, body, raw, lambda doc: pages.faults_page(doc, cleared=cleared),
                      "fault list", "")

    @app.page("/ui/faults/{alarm_id}")
    async def ui_fault(web, request: Request, alarm_id: str) -> Response:
        query = request.query
        offset = _int_param(query.get("offset"), 0, 0, 10**9)
        limit = _int_param(query.get("limit"), 100, 1, MAX_PAGE_LIMIT)
        path = f"/faults/{quote(alarm_id, safe='')}?" + urlencode({"offset": offset, "limit": limit})
        status, body, raw = await fetch(path)
        return render(web, status, body, raw, pages.fault_page, "fault", alarm_id)

    @app.page("/ui/customers")
    async def ui_customer_search(web, request: Request) -> Response:
        customer_id = (request.query.get("id") or "").strip()
        if not customer_id:
            return redirect(web, "/ui/faults")
        return redirect(web, pages.customer_href(customer_id))

    @app.page("/ui/customers/{customer_id}")
    async def ui_customer(web, request: Request, customer_id: str) -> Response:
        status, body, raw = await fetch(f"/customers/{quote(customer_id, safe='')}?view=care")
        return render(web, status, body, raw, pages.customer_page, "customer", customer_id)

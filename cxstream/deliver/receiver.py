"""A small webhook receiver that counts what arrives: for the demo, compose and trying routes out.

    python -m cxstream.deliver.receiver [--port 8080] [--secret-env NAME]

``POST /<anything>``: verifies ``X-Cxstream-Signature`` when a secret is given
(401 when it does not verify), drops copies by ``Idempotency-Key`` and counts
events by trigger. ``GET /stats``: the counts as JSON. ``GET /healthz``: ok.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

import orjson
from aiohttp import web

from .endpoint import SIGNATURE_HEADER, verify


class CountingReceiver:
    def __init__(self, secret: bytes | None = None):
        self.secret = secret
        self.ids: set[str] = set()
        self.by_trigger: Counter[str] = Counter()
        self.requests = 0
        self.copies = 0
        self.bad_signatures = 0

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        if self.secret is not None and not verify(self.secret, body, request.headers.get(SIGNATURE_HEADER)):
            self.bad_signatures += 1
            return web.Response(status=401, text="signature does not verify")
        key = request.headers.get("Idempotency-Key", "")
        if key in self.ids:
            self.copies += 1
            return web.Response(status=200, text="copy")
        try:
            trigger = orjson.loads(body)["data"]["trigger"]
        except Exception:
            return web.Response(status=400, text="not a cxstream trigger CloudEvent")
        self.ids.add(key)
        self.by_trigger[trigger] += 1
        return web.Response(status=200, text="ok")

    def stats(self) -> dict:
        return {"events": len(self.ids), "requests": self.requests, "copies": self.copies,
                "bad_signatures": self.bad_signatures, "by_trigger": dict(sorted(self.by_trigger.items()))}

    def app(self) -> web.Application:
        app = web.Application()

        async def stats(request: web.Request) -> web.Response:
            return web.json_response(self.stats())

        async def healthz(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        app.router.add_get("/stats", stats)
        app.router.add_get("/healthz", healthz)
        app.router.add_post("/{tail:.*}", self.hook)
        return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cxstream.deliver.receiver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--secret-env", default=None, help="environment variable holding the HMAC key")
    args = parser.parse_args(argv)
    secret = None
    if args.secret_env:
        value = os.environ.get(args.secret_env, "")
        if not value:
            print(f"receiver: {args.secret_env} is not set", file=sys.stderr)
            return 2
        secret = value.encode()
    web.run_app(CountingReceiver(secret).app(), host=args.host, port=args.port, access_log=None,
                print=lambda *a: print(f"receiver: listening on {args.host}:{args.port}", flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

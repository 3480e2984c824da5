# syntax=docker/dockerfile:1

# ---- builder: every wheel (pinned by deploy/requirements.lock), then a virtualenv from them
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY deploy/requirements.lock deploy/requirements.lock
RUN pip wheel --only-binary=:all: --no-deps --wheel-dir /wheels --requirement deploy/requirements.lock

COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links /wheels \
        --requirement deploy/requirements.lock /wheels/cxstream-*.whl \
    && /opt/venv/bin/pip check

# ---- runtime: the virtualenv on a slim Python, as a non-root user
FROM python:3.11-slim

LABEL org.opencontainers.image.title="cxstream" \
      org.opencontainers.image.description="Streaming customer-experience processor: TMF642 alarms and service quality in, scores and CloudEvent triggers out"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CXSTREAM_WEB_PORT=6066 \
    CXSTREAM_DATA_DIR=/var/lib/cxstream

RUN groupadd --system --gid 10001 cxstream \
    && useradd --system --uid 10001 --gid cxstream --home-dir /var/lib/cxstream \
        --no-create-home --shell /usr/sbin/nologin cxstream \
    && install -d -o cxstream -g cxstream -m 0750 /var/lib/cxstream

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
WORKDIR /var/lib/cxstream
VOLUME ["/var/lib/cxstream"]
EXPOSE 6066

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CXSTREAM_WEB_PORT', '6066') + '/healthz', timeout=4)"]

ENTRYPOINT ["cxstream"]
CMD ["worker"]

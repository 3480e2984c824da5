"""``cxstream deliver``: push the trigger topics' CloudEvents to HTTP webhooks.

* :mod:`.routes` -- the routes file (YAML, validated by pydantic).
* :mod:`.endpoint` -- one endpoint: signing, bounded concurrency, retries, circuit breaker.
* :mod:`.tracker` -- per-partition lowest unfinished offset (what may be committed).
* :mod:`.service` -- the process: consumer group, dead letters, web port, metrics.
"""

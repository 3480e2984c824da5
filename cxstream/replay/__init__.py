"""``cxstream replay``: a rule dry-run over recorded input.

Reads recorded input (a time range of the real input topics, JSON-lines files,
or the synthetic operator), runs it through the same :class:`Engine` the worker
uses, offline, and reports what would have fired. Nothing is written to Kafka.

- :mod:`.inputs`: where records come from, and the order they are replayed in
- :mod:`.runner`: one engine per rules file, fed record by record
- :mod:`.report`: the figures (text and JSON) and the comparison of two rule sets
- :mod:`.cli`: the command's arguments and its one-line errors

See docs/replay.md.
"""

from .inputs import ReplayError

__all__ = ["ReplayError"]

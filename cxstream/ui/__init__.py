"""Server-rendered pages on the worker's web port (``/ui/…``).

pages.py renders the JSON documents to HTML (pure functions); routes.py serves
them. ``register_ui(worker)`` is imported lazily so the renderers load without faust.
"""


def register_ui(worker) -> None:
    """Add ``/ui/faults``, ``/ui/faults/{alarm_id}`` and ``/ui/customers/{id}`` to the worker's web."""
    from .routes import register_ui as register

    register(worker)

"""Encoders of what cxstream produces: score documents, trigger CloudEvents, dead letters.

Every message they produce stays under MAX_MESSAGE_BYTES, the broker's default limit.
"""

from ..models.limits import MAX_MESSAGE_BYTES

__all__ = ["MAX_MESSAGE_BYTES"]

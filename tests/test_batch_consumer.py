"""The consumer's put-back of a hot fetch survives a partition revoked under it."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

from aiokafka.errors import IllegalStateError
from faust.types import TP

from cxstream.stream.batch_consumer import BatchConsumer


class _Client:
    """What _put_back uses of the consumer: the assignment the client thread
    reported, and a seek that this thread's client refuses for a partition it
    revoked in between (a race: the client runs in its own thread)."""

    def __init__(self, assigned, revoked):
        self.assigned, self.revoked, self.seeks = set(assigned), set(revoked), []
        self.log = logging.getLogger("test")

    def assignment(self):
        return set(self.assigned)

    async def seek(self, tp, offset):
        if tp in self.revoked:
            raise IllegalStateError(f"No current assignment for partition {tp}")
        self.seeks.append((tp, offset))

    async def _rewind(self, batch):
        await BatchConsumer._rewind(self, batch)


def test_a_partition_revoked_between_the_check_and_the_seek_does_not_end_the_drain_loop():
    a, b = TP("cx.quality", 0), TP("cx.quality", 1)
    client = _Client(assigned={a, b}, revoked={a})
    batch = [(a, [SimpleNamespace(offset=10)]), (b, [SimpleNamespace(offset=20), SimpleNamespace(offset=21)])]
    asyncio.run(BatchConsumer._put_back(client, batch))  # must not raise
    assert client.seeks == [(b, 20)]  # the partition still held is put back to its first record

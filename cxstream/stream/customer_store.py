"""The state table's in-memory store: each customer's stored form, by partition.

faust's own memory store keeps, per key, the value in one dict and the key's
partition in a second one, both keyed by bytes beside the engine's text ids:
at a million customers that is ~130 B per customer of dict entries and key
objects for nothing (issue 3). This store keeps one dict per partition, keyed
by the customer id as text (the engine's own key object where it can) and
holding the very bytes object the engine holds for an idle customer.

faust fills it when it recovers a partition from the changelog
(``apply_changelog_batch``) and empties the partitions this worker no longer
owns once recovery is done; the worker writes it (``put``) when it writes a
customer's changelog record, and reads it to adopt the customers of a newly
assigned partition (``customers_of``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable

from faust.stores import memory
from faust.types import TP, EventT

#: faust store URL of this store (see CxWorker: ``app.Table(..., store=...)``).
URL = "cxcustomers://memory"  # (a host: yarl finds a URL of a scheme alone false)


class _AllPartitions(Mapping):
    """A read-only view of every partition's customers, for faust's generic
    table code (``len(table)``, ``table.items()``); cxstream itself goes
    through the store's partition-aware methods."""

    def __init__(self, partitions: dict[int, dict[str, bytes]]):
        self._partitions = partitions

    def __getitem__(self, customer_id: str) -> bytes:
        for customers in self._partitions.values():
            value = customers.get(customer_id)
            if value is not None:
                return value
        raise KeyError(customer_id)

    def __iter__(self) -> Iterator[str]:
        for customers in list(self._partitions.values()):
            yield from list(customers)

    def __len__(self) -> int:
        return sum(len(customers) for customers in self._partitions.values())

    def clear(self) -> None:
        self._partitions.clear()


class CustomerStore(memory.Store):
    def __post_init__(self) -> None:
        self.partitions: dict[int, dict[str, bytes]] = {}
        self.data = _AllPartitions(self.partitions)
        self._key_partition = {}  # faust's memory store has it; unused here

    # ------------------------------------------------------------ cxstream
    def put(self, partition: int, customer_id: str, value: bytes | None) -> None:
        """A customer's stored form (None: the customer was erased)."""
        if value:
            customers = self.partitions.get(partition)
            if customers is None:
                customers = self.partitions[partition] = {}
            customers[customer_id] = value
        else:
            customers = self.partitions.get(partition)
            if customers is not None:
                customers.pop(customer_id, None)

    def stored(self, partition: int, customer_id: str) -> bytes | None:
        customers = self.partitions.get(partition)
        return None if customers is None else customers.get(customer_id)

    def customers_of(self, partitions: Iterable[int]) -> list[tuple[str, bytes]]:
        """(customer id, stored form) of every customer of these partitions."""
        out: list[tuple[str, bytes]] = []
        for partition in sorted(partitions):
            out.extend(self.partitions.get(partition, {}).items())
        return out

    # --------------------------------------------------------------- faust
    def apply_changelog_batch(self, batch: Iterable[EventT], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        """Records read back from the changelog (recovery, standby): the
        last one of a key wins, an empty value (a tombstone, or the seal the
        worker writes after a flush) deletes it."""
        for event in batch:
            message = event.message
            key = message.key
            if not key:
                continue
            self.put(message.partition, key.decode("utf-8", "replace"), message.value)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        # as faust's memory store: keep only the partitions this worker now owns
        keep = {tp.partition for tp in active_tps}
        for partition in list(self.partitions):
            if partition not in keep:
                del self.partitions[partition]

    def _clear(self) -> None:
        self.partitions.clear()


def register() -> None:
    """Make ``URL`` resolve to this store (faust finds stores by URL scheme)."""
    from faust import stores

    stores.STORES.aliases.setdefault(URL.split(":", 1)[0], f"{__name__}:CustomerStore")

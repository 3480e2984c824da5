"""What may be committed: per partition, the lowest offset not yet finished.

An offset is finished when every endpoint its event matched has delivered or
dead-lettered it. The committable position of a partition is its lowest
unfinished offset (or one past the highest seen when none is unfinished), so a
restart never skips an unfinished event.

:meth:`OffsetTracker.start` returns the partition's tracker; a delivery finishes
its offset on that object, so a delivery that outlives a revocation (and a
re-assignment of the same partition) cannot finish an offset of the new one.
"""

from __future__ import annotations

import heapq


class PartitionTracker:
    __slots__ = ("heap", "open", "next_offset")

    def __init__(self) -> None:
        self.heap: list[int] = []  # started offsets, lazily cleaned
        self.open: set[int] = set()  # started, not finished
        self.next_offset: int | None = None  # one past the highest offset seen

    def start(self, offset: int) -> None:
        if offset in self.open:
            return
        self.open.add(offset)
        heapq.heappush(self.heap, offset)
        if self.next_offset is None or offset + 1 > self.next_offset:
            self.next_offset = offset + 1

    def finish(self, offset: int) -> None:
        self.open.discard(offset)
        while self.heap and self.heap[0] not in self.open:
            heapq.heappop(self.heap)

    def position(self) -> int | None:
        """The offset to commit (the next one to read after a restart); None if nothing seen."""
        if self.heap:
            return self.heap[0]
        return self.next_offset

    def unfinished(self) -> int:
        return len(self.open)


class OffsetTracker:
    def __init__(self) -> None:
        self.partitions: dict[tuple[str, int], PartitionTracker] = {}
        self._committed: dict[tuple[str, int], int] = {}

    def start(self, topic: str, partition: int, offset: int) -> PartitionTracker:
        tracker = self.partitions.get((topic, partition))
        if tracker is None:
            tracker = self.partitions[(topic, partition)] = PartitionTracker()
        tracker.start(offset)
        return tracker

    def finish(self, topic: str, partition: int, offset: int) -> None:
        tracker = self.partitions.get((topic, partition))
        if tracker is not None:
            tracker.finish(offset)

    def drop(self, keys) -> None:
        for key in keys:
            self.partitions.pop(key, None)
            self._committed.pop(key, None)

    def to_commit(self, keys=None) -> dict[tuple[str, int], int]:
        """Positions that moved since last :meth:`committed`."""
        moves = {}
        for key, tracker in self.partitions.items():
            if keys is not None and key not in keys:
                continue
            position = tracker.position()
            if position is not None and self._committed.get(key) != position:
                moves[key] = position
        return moves

    def committed(self, moves: dict[tuple[str, int], int]) -> None:
        self._committed.update(moves)

    def unfinished(self) -> int:
        return sum(t.unfinished() for t in self.partitions.values())

"""The KV cache's slots: one per running sequence, each as long as the context window.

Per-slot static caches keep the attention kernel simple and CUDA-graph friendly; the price is memory
reserved for the whole window. The scheduler asks ``can_allocate`` before ``allocate``.
"""

from __future__ import annotations

__all__ = ["SlotManager"]


class SlotManager:
    """Free slot numbers, handed out lowest first so that active slots stay dense."""

    def __init__(self, num_slots: int) -> None:
        if num_slots < 1:
            raise ValueError("the KV cache needs at least one slot")
        self._free = list(range(num_slots - 1, -1, -1))
        self.num_slots = num_slots

    def can_allocate(self) -> bool:
        return bool(self._free)

    def allocate(self) -> int:
        if not self._free:
            raise RuntimeError("no free KV cache slot; ask can_allocate() first")
        return self._free.pop()

    def deallocate(self, slot: int) -> None:
        if slot in self._free or not 0 <= slot < self.num_slots:
            raise RuntimeError(f"slot {slot} is not allocated")
        self._free.append(slot)
        self._free.sort(reverse=True)

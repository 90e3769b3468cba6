"""A bound, in bytes, on what waits to be stored: whoever queues waits when it is spent.

One `ByteBudget` lives on one event loop (it is not thread-safe): the code that queues a
sample takes its size at once (a sample is never refused, so the bound can be passed by one
sample per producer), then awaits `room()` only when the budget is spent; whoever stores it
releases its size. Those who wait are woken in turn as bytes come back.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Callable, Optional


class ByteBudget:
    """`limit` bytes shared by every producer of one event loop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pressure: list[Callable[[], None]] = []

    @property
    def spent(self) -> bool:
        """Whether what is held reaches the limit (a producer should wait for room)."""
        return self.used >= self.limit

    @property
    def waiting(self) -> int:
        """How many producers wait for room."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def take(self, size: int) -> None:
        self.used += size

    def release(self, size: int) -> None:
        self.used -= size
        while self._waiters and not self.spent:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def on_pressure(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Calls `callback` whenever a producer starts waiting; returns its remover."""
        self._pressure.append(callback)
        return lambda: self._pressure.remove(callback)

    async def room(self, timeout: Optional[float] = None) -> bool:
        """Waits until the budget is no longer spent; False after `timeout` seconds."""
        if not self.spent:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        for callback in list(self._pressure):
            callback()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            if not waiter.done():
                waiter.cancel()
        return True

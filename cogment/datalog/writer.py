"""The thread that writes a datalog store, fed from an event loop.

`StoreWriter` owns the SQLite connection and one thread. Code on the event loop submits
operations (`cogment.datalog.store`) with a callback; the thread writes whatever has piled
up (in the `LINGER` seconds after the first one came) in one transaction, then hands the
outcome of the batch back to the loop in one call, where each operation's callback runs. The bytes of queued operations are held in a
`ByteBudget` (on the loop) until they are written: producers that find it spent wait.

A batch that another process's lock keeps out is retried (for at most `busy_patience`
seconds); any other SQLite error fails the batch: its callbacks get the error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
import time
from typing import Callable, NamedTuple, Optional, Union

from cogment.errors import DatalogError

from . import store
from .budget import ByteBudget

log = logging.getLogger("cogment.datalog")

MAX_BATCH_OPERATIONS = 2000
MAX_BATCH_BYTES = 16 * 1024 * 1024
# Seconds the thread lets operations pile up once one came: a transaction (and a wake-up of
# the event loop) per 20 ms at most, however many ticks, instead of one per tick (it halves
# the writer's CPU per small sample); a reader following a trial sees it that much later.
LINGER = 0.02
BUSY_PATIENCE = 30.0
Done = Callable[[Optional[BaseException]], None]


class _Item(NamedTuple):
    operation: store.Operation
    size: int
    done: Optional[Done]


class StoreWriter:
    """Writes the store at `path` from its own thread; use it from one event loop.

    Args:
        path: the SQLite file (created, with its schema, when missing).
        max_queue_bytes: the bytes that may wait to be written before producers wait.
        busy_patience: seconds to keep retrying a batch another writer's lock keeps out.

    Raises:
        DatalogError: the store cannot be opened for writing.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        max_queue_bytes: int,
        busy_patience: float = BUSY_PATIENCE,
    ) -> None:
        self.path = os.fspath(path)
        self._connection = store.open_store(self.path, readonly=False)
        self._loop = asyncio.get_running_loop()
        self.budget = ByteBudget(max_queue_bytes)
        self._busy_patience = busy_patience
        self._queue: queue.SimpleQueue[Optional[_Item]] = queue.SimpleQueue()  # None: stop
        self._queued = 0  # operations submitted and not written (event loop)
        self._drained: list[asyncio.Future[None]] = []
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"cogment-datalog {os.path.basename(self.path)}", daemon=True
        )
        self._thread.start()

    @property
    def queued(self) -> int:
        """Operations submitted and not written yet."""
        return self._queued

    def submit(self, operation: store.Operation, done: Optional[Done] = None) -> int:
        """Queues `operation` (never blocks); `done(error)` runs on the loop once it is
        written (error None) or failed (also when the writer is closed already). Returns
        the bytes it holds in the budget."""
        if self._closed:
            if done is not None:
                self._loop.call_soon(done, DatalogError(f"{self.path}: the writer is closed"))
            return 0
        size = store.size_of(operation)
        self.budget.take(size)
        self._queued += 1
        self._queue.put(_Item(operation, size, done))
        return size

    async def drained(self, timeout: Optional[float]) -> bool:
        """Waits until everything submitted so far is written (or failed)."""
        if self._queued == 0:
            return True
        waiter = self._loop.create_future()
        self._drained.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self, timeout: Optional[float]) -> bool:
        """Writes what is queued (waiting at most `timeout` s), then stops the thread and
        closes the file. Returns False when operations were left unwritten."""
        if self._closed:
            return True
        drained = await self.drained(timeout)
        self._closed = True
        self._queue.put(None)
        await self._loop.run_in_executor(None, self._thread.join, 5.0)
        if not self._thread.is_alive():
            self._connection.close()
        return drained

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            size = first.size
            time.sleep(LINGER)
            while len(batch) < MAX_BATCH_OPERATIONS and size < MAX_BATCH_BYTES:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
                size += item.size
            error = self._write([item.operation for item in batch])
            try:
                self._loop.call_soon_threadsafe(self._written, batch, error)
            except RuntimeError:  # the loop is closed: no one waits anymore
                return

    def _write(self, operations: list[store.Operation]) -> Optional[BaseException]:
        deadline = time.monotonic() + self._busy_patience
        pause = 0.01
        while True:
            try:
                store.write(self._connection, operations)
                return None
            except sqlite3.Error as error:
                if store.is_busy(error) and time.monotonic() < deadline:
                    time.sleep(pause)  # another process holds the lock: try again
                    pause = min(pause * 2, 0.5)
                    continue
                log.warning("datalog %s: a write failed: %s", self.path, error)
                return DatalogError(f"{error}")
            except Exception as error:  # a bug of ours: fail the batch, keep the thread
                log.exception("datalog %s: internal error", self.path)
                return error

    def _written(self, batch: list[_Item], error: Optional[BaseException]) -> None:
        released = 0
        for _operation, size, done in batch:
            released += size
            if done is not None:
                try:
                    done(error)
                except Exception:
                    log.exception("datalog %s: a write callback failed", self.path)
        self._queued -= len(batch)
        self.budget.release(released)
        if self._queued == 0:
            waiters, self._drained = self._drained, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

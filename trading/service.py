"""Group commit for concurrent callers: one writer thread, a bounded queue, futures.

Callers ``submit`` a command and wait on its future; the writer takes whatever is queued
(up to ``max_batch``), executes it with ``OMS.execute`` in one transaction, and only then
resolves the futures. Under load, batches grow and one fsync serves many orders; when idle,
a lone command commits at once.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from trading.commands import Command, Result
from trading.oms import OMS

_STOP = object()


class OMSService:
    def __init__(self, oms: OMS, max_batch: int | None = None, max_queue: int | None = None):
        self.oms = oms
        self.max_batch = max_batch or oms.config.max_batch
        self._queue: queue.Queue[tuple[Command, Future[Result]] | object] = queue.Queue(
            maxsize=max_queue or oms.config.max_queue
        )
        self._thread = threading.Thread(target=self._run, name="oms-writer", daemon=True)
        self.batches = 0
        self.commands = 0

    def __enter__(self) -> OMSService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()

    def submit(self, command: Command, timeout: float | None = None) -> Future[Result]:
        """Queue a command; blocks (back-pressure) while the queue is full."""
        fut: Future[Result] = Future()
        self._queue.put((command, fut), timeout=timeout)
        return fut

    def _run(self) -> None:
        q = self._queue
        while True:
            first = q.get()
            if first is _STOP:
                return
            items = [first]
            stop = False
            while len(items) < self.max_batch:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                items.append(nxt)
            pairs = [item for item in items if isinstance(item, tuple)]
            try:
                results = self.oms.execute([cmd for cmd, _ in pairs])
            except Exception as exc:  # a bug, not a business error: fail the callers loudly
                for _, fut in pairs:
                    fut.set_exception(exc)
            else:
                for (_, fut), result in zip(pairs, results, strict=True):
                    fut.set_result(result)
            self.batches += 1
            self.commands += len(pairs)
            if stop:
                return

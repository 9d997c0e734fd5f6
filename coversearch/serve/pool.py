"""The bounded pool for heavy requests (audio analysis, h5 embedding, re-rank).

``workers`` jobs run at once in threads (torch, essentia and the numba
alignment release the GIL for their heavy parts); at most ``queue`` more wait.
A request that finds every slot taken is refused at once with
:class:`PoolFull` (the app answers 503 with ``Retry-After``) instead of
queueing without limit. A slot is released when its job *finishes*, not when
its client goes away, so a disconnecting client cannot make the pool
overcommit.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor


class PoolFull(Exception):
    """Every heavy slot is taken; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, workers: int, queue: int) -> None:
        super().__init__(f"the server is busy with {workers + queue} heavy requests "
                         f"({workers} running, {queue} waiting); retry in {retry_after} s")
        self.retry_after = retry_after


class HeavyPool:
    """Run blocking functions in at most ``workers`` threads with ``queue`` waiting slots.

    Args:
        workers: jobs that run at the same time (>= 1).
        queue: jobs that may wait for a worker (>= 0).
    """

    def __init__(self, workers: int = 1, queue: int = 2) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"need workers >= 1 and queue >= 0, got {workers}, {queue}")
        self.workers, self.queue = int(workers), int(queue)
        self._slots = threading.BoundedSemaphore(self.workers + self.queue)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="coversearch-heavy")
        self._lock = threading.Lock()
        self.in_flight = 0
        self.done = 0
        self.refused = 0
        self._mean_seconds = 2.0  # running mean of job time, for Retry-After

    def retry_after(self) -> int:
        """Seconds after which a slot is likely free: the queue ahead times the mean job time."""
        return max(1, math.ceil(self._mean_seconds * (self.workers + self.queue) / self.workers))

    async def run(self, fn, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` in the pool and await its result.

        Raises:
            PoolFull: no free slot (nothing was started).
        """
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.refused += 1
            raise PoolFull(self.retry_after(), self.workers, self.queue)
        with self._lock:
            self.in_flight += 1
        t0 = time.perf_counter()
        try:
            fut = self._executor.submit(fn, *args, **kwargs)
        except BaseException:
            self._release(None, t0)
            raise
        fut.add_done_callback(lambda f: self._release(f, t0))
        return await asyncio.wrap_future(fut)

    def _release(self, fut, t0: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self.done += 1
            self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * (time.perf_counter() - t0)
        self._slots.release()

    def stats(self) -> dict:
        return {"workers": self.workers, "queue": self.queue, "in_flight": self.in_flight, "done": self.done,
                "refused": self.refused}

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

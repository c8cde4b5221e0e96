"""``labelbench serve``'s batching: concurrent requests queued and run as engine passes in one
worker thread, with work per request bounded before any forward pass.

Requests wait in a bounded queue (``QueueFull`` when it is full); one worker takes what is queued
(up to ``max_batch`` items, waiting at most ``max_wait_ms`` for more) into one engine pass. An
item over the per-item token limit is refused before queueing (``TooLong``); a request not
answered within ``timeout`` has its remaining items dropped between engine calls of
``CHUNK_ITEMS`` items. A failing batch is retried request by request, so one bad request never
fails the others. The engine runs in a daemon thread, so a pass still running at shutdown never
holds the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from labelbench.config import ServeSettings
from labelbench.reward_engine import RewardEngine, RewardItem


class QueueFull(Exception):
    """The bounded queue cannot take the request (HTTP 503)."""


class TooLong(Exception):
    """An item over the per-item token limit (HTTP 413), found before any forward pass."""


CHUNK_ITEMS = 16
"""Items per engine call within a batch: between calls the worker drops the items of requests
that timed out or went away, and stops when the server shuts down."""


class _EngineThread(Executor):
    """One daemon thread that runs the engine: a pass still running at shutdown never holds
    the process (SIGTERM stops the server within seconds; the label cache is safe against a
    killed process)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.busy = False
        threading.Thread(target=self._loop, name="labelbench-engine", daemon=True).start()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._calls.put((future, fn, args, kwargs))
        return future

    def _loop(self) -> None:
        while True:
            future, fn, args, kwargs = self._calls.get()
            if future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue
            self.busy = True
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)
            finally:
                self.busy = False

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._calls.put((None, None, None, None))


@dataclass
class _Job:
    items: list[RewardItem]
    future: asyncio.Future[list[float | None]]


@dataclass
class RewardService:
    """Batches concurrent requests into engine passes, run in one worker thread.

    Work per request is bounded before any forward pass: at most ``settings.max_items`` items,
    each within ``settings.max_item_tokens`` tokens (default: the labeler's context limit;
    ``TooLong`` otherwise), and a request that times out or whose client goes away has its
    remaining items dropped between engine calls (``CHUNK_ITEMS``)."""

    engine: RewardEngine
    settings: ServeSettings = field(default_factory=ServeSettings)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._pool = _EngineThread()
        self._stopping = False
        self.queued = 0  # items waiting or in the running pass
        self.abandoned = 0  # items dropped because their request timed out or went away

    async def start(self) -> None:
        """Start the batching worker on the running event loop (idempotent)."""
        if self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self, wait: float = 2.0) -> None:
        """Stop the worker; the running engine call is asked to stop at its next chunk and
        waited for at most ``wait`` seconds (the cache is closed when it finishes in time)."""
        self._stopping = True
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        closing = asyncio.get_running_loop().run_in_executor(self._pool, self.engine.close)
        with contextlib.suppress(TimeoutError):  # a pass still running: the daemon thread
            await asyncio.wait_for(asyncio.shield(closing), wait)  # ends with the process
        self._pool.shutdown(wait=False)

    def limit(self) -> int | None:
        """Tokens (characters without a tokenizer) one item may hold."""
        return self.settings.max_item_tokens or self.engine.item_limit()

    def check(self, items: Sequence[RewardItem]) -> None:
        """TooLong naming the first item over ``limit()``; run outside the engine thread."""
        limit = self.limit()
        if limit is None:
            return
        unit = "tokens" if self.engine.labeler.tokenizer is not None else "characters"
        for index, item in enumerate(items):
            size = self.engine.item_length(item)
            if size > limit:
                raise TooLong(
                    f"item {index}: {size} {unit} (prompt, response and reference), over the "
                    f"limit of {limit} {unit} per item (--max-item-tokens; default the "
                    "labeler's context limit)"
                )

    async def rewards(self, items: list[RewardItem]) -> list[float | None]:
        """Queue items and wait for their rewards; TooLong for an item over the per-item limit
        (checked before queueing), QueueFull when the queue is full, TimeoutError after
        ``settings.timeout`` seconds (the request's work is then dropped), InputError for an
        item the engine refuses."""
        await self.start()
        await asyncio.to_thread(self.check, items)
        if self.queued + len(items) > self.settings.queue_size:
            raise QueueFull(f"{self.queued} items queued (limit {self.settings.queue_size})")
        future: asyncio.Future[list[float | None]] = asyncio.get_running_loop().create_future()
        self.queued += len(items)
        assert self._queue is not None
        self._queue.put_nowait(_Job(items, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.settings.timeout)
        except BaseException:  # timed out, or the client went away: nobody waits for it now
            future.cancel()
            raise

    async def _work(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].items)
            deadline = loop.time() + self.settings.max_wait_ms / 1000
            while size < self.settings.max_batch:
                remaining = deadline - loop.time()
                try:
                    job = (
                        self._queue.get_nowait()
                        if remaining <= 0
                        else await asyncio.wait_for(self._queue.get(), remaining)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                jobs.append(job)
                size += len(job.items)
            try:
                await self._run(jobs)
            finally:
                self.queued -= size

    async def _run(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        jobs = [job for job in jobs if not job.future.done()]
        owners: dict[RewardItem, list[_Job]] = {}
        for job in jobs:
            for item in job.items:
                owners.setdefault(item, []).append(job)
        unique = list(owners)
        found: dict[RewardItem, float | None] = {}
        try:
            for start in range(0, len(unique), CHUNK_ITEMS):
                if self._stopping:
                    return
                candidates = unique[start : start + CHUNK_ITEMS]
                chunk = [
                    item
                    for item in candidates
                    if any(not job.future.done() for job in owners[item])
                ]
                self.abandoned += len(candidates) - len(chunk)
                if chunk:
                    values = await loop.run_in_executor(self._pool, self.engine.rewards, chunk)
                    found.update(zip(chunk, values, strict=True))
        except Exception as error:
            if len(jobs) > 1:  # find the request at fault: each alone
                for job in jobs:
                    await self._run([job])
                return
            if jobs:
                _settle(jobs[0].future, error=error)
            return
        for job in jobs:
            if not job.future.done():
                _settle(job.future, [found[item] for item in job.items])


def _settle(
    future: asyncio.Future[list[float | None]],
    values: list[float | None] | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # its request timed out; the labels are cached all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(values or [])

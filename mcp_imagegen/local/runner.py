"""One loaded model per process, reused by every call, run one call at a time in a worker thread.

Inference is CPU-bound and releases the GIL, so it runs in anyio's worker threads and the event
loop keeps serving. Each model has a capacity limiter of one: concurrent calls to the same model
queue instead of loading it twice or running two large inferences side by side, which keeps
memory at one model's working set however many calls arrive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

Model = TypeVar("Model")
Result = TypeVar("Result")


class ModelRunner(Generic[Model]):
    """Loads its model on first use (in the worker thread) and keeps it for the process's life."""

    def __init__(self, label: str, load: Callable[[], Model]) -> None:
        self._label = label
        self._load = load
        self._model: Model | None = None
        self._lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(1)
        self._calls = 0
        """Calls running or waiting; touched only on the event loop."""

    @property
    def loaded(self) -> bool:
        return self._model is not None

    async def run(self, work: Callable[[Model], Result], step: Callable[[str], None]) -> Result:
        """`work(model)` in a worker thread once the model is free; `step` hears that the call queues
        or that the model loads (the provider passes its call's `CallEvents.step`)."""
        self._calls += 1
        try:
            if self._calls > 1:
                step(f"queued: the local {self._label} model is busy with another call")
            if not self.loaded:
                step(f"loading the local {self._label} model")
            return await anyio.to_thread.run_sync(self._call, work, limiter=self._limiter)
        finally:
            self._calls -= 1

    def _call(self, work: Callable[[Model], Result]) -> Result:
        return work(self._get())

    def _get(self) -> Model:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

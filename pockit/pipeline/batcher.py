"""The batcher: frames of any streams, up to ``max_batch`` per inference call, waiting at most ``max_wait``."""
from __future__ import annotations

import queue
import time


class Batcher:
    """``next()`` -> a list of queue items (FrameRef / EndOfStream): the first item blocks (up to ``poll``
    seconds, then an empty list so the caller can check for a stop), then up to ``max_batch`` frames are
    taken, waiting at most ``max_wait`` seconds for the batch to fill. End-of-stream markers ride along
    without counting toward the batch."""

    def __init__(self, ready, max_batch: int, max_wait: float, poll: float = 0.1) -> None:
        self.ready, self.max_batch, self.max_wait, self.poll = ready, max(1, int(max_batch)), max_wait, poll
        self.wait_s = 0.0  # time spent waiting for frames (the batcher starved)

    def next(self) -> list:
        t0 = time.perf_counter()
        try:
            items = [self.ready.get(timeout=self.poll)]
        except queue.Empty:
            self.wait_s += time.perf_counter() - t0
            return []
        frames = 0 if _is_end(items[0]) else 1
        deadline = time.perf_counter() + self.max_wait
        while frames < self.max_batch:
            try:
                item = self.ready.get_nowait()
            except queue.Empty:
                left = deadline - time.perf_counter()
                if left <= 0 or self.max_batch == 1:
                    break
                try:
                    item = self.ready.get(timeout=min(left, 0.002))
                except queue.Empty:
                    continue
            items.append(item)
            frames += 0 if _is_end(item) else 1
        self.wait_s += time.perf_counter() - t0
        return items


def _is_end(item) -> bool:
    return not hasattr(item, "slot")

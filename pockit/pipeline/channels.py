"""Child-to-parent messages on one pipe per child process.

A shared ``multiprocessing.Queue`` has one write lock for all its writers: a child killed while holding it
(SIGKILL, out-of-memory killer) blocks every other child's results for good, and the run hangs. Here each
child writes to its own pipe (no lock shared with anyone); the parent waits on all of them at once. A child
that dies closes its end, so the parent reads what it sent and then sees the end of that pipe.
"""
from __future__ import annotations

import queue
from collections import deque
from multiprocessing.connection import wait


class Sender:
    """A child's end: ``put(msg)`` like a queue."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def put(self, msg) -> None:
        self.conn.send(msg)


class Receiver:
    """The parent's ends, keyed by child: ``get(timeout)`` -> the next message of any child (each child's
    messages in order), raises queue.Empty. ``ended(key)``: that child's pipe is closed and read to its end."""

    def __init__(self) -> None:
        self.conns: dict = {}
        self.key_of: dict = {}
        self.buf: deque = deque()
        self.gone: set = set()

    def add(self, key, conn) -> None:
        self.conns[key] = conn
        self.key_of[id(conn)] = key

    def _read(self, conn) -> None:
        try:
            self.buf.append(conn.recv())
        except (EOFError, OSError):  # the child closed its end (it exited or died): all it sent is read
            key = self.key_of[id(conn)]
            self.gone.add(key)
            self.conns.pop(key, None)
            try:
                conn.close()
            except OSError:
                pass

    def get(self, timeout: float | None = None):
        if self.buf:
            return self.buf.popleft()
        if self.conns:
            for c in wait(list(self.conns.values()), timeout if timeout and timeout > 0 else 0):
                self._read(c)
        if self.buf:
            return self.buf.popleft()
        raise queue.Empty

    def drain(self, key, timeout: float = 1.0) -> list:
        """Everything left on one child's pipe (the child is dead): its messages, in order."""
        out: list = []
        conn = self.conns.get(key)
        while conn is not None and key not in self.gone and conn.poll(timeout):
            try:
                out.append(conn.recv())
            except (EOFError, OSError):
                self.gone.add(key)
                self.conns.pop(key, None)
                break
        return out

    def ended(self, key) -> bool:
        return key in self.gone

    def close(self) -> None:
        for c in self.conns.values():
            try:
                c.close()
            except OSError:
                pass
        self.conns.clear()

"""Bounded frame memory: a fixed pool of frame slots that decoders write into.

The pool is one block of shared memory cut into ``n`` slots of ``slot_bytes`` each, allocated once:
memory does not grow with streams x batch, and a decoder that finds no free slot either waits
(files: backpressure) or drops the frame (live cameras). Worker processes attach to the same block by
name and read a frame in place (only slot numbers travel through queues, as in Frigate). When the
detector runs on CUDA the block is registered as page-locked (pinned) memory, so the host-to-device copy
of a batch is a DMA straight from the slot.
"""
from __future__ import annotations

import logging
import queue
import threading
from multiprocessing import shared_memory

import numpy as np

log = logging.getLogger("pockit.pipeline")


class FramePool:
    """``n`` frame slots of at most ``slot_bytes`` bytes (HxWx3 uint8).

    acquire(timeout) -> slot index or None; view(slot, h, w) -> numpy view; release(slot).
    ``high_water`` is the largest number of slots ever in use at once (never above ``n``).
    """

    def __init__(self, n: int, slot_bytes: int, *, shared: bool = True, pin: bool = False) -> None:
        if n < 1 or slot_bytes < 1:
            raise ValueError(f"frame pool needs n >= 1 slots of >= 1 byte, got n={n}, slot_bytes={slot_bytes}")
        self.n, self.slot_bytes = int(n), int(slot_bytes)
        total = self.n * self.slot_bytes
        self.shm: shared_memory.SharedMemory | None = None
        if shared:
            try:
                self.shm = shared_memory.SharedMemory(create=True, size=total)
                self.buf = np.ndarray((total,), np.uint8, buffer=self.shm.buf)
                self.buf[::4096] = 0  # touch every page now: a too-small /dev/shm fails here, not mid-run
            except (OSError, ValueError) as e:
                log.warning("shared frame memory of %.0f MB unavailable (%s): frames stay in this process, "
                            "tracking/rules run in threads", total / 2**20, e)
                self._free_shm()
        if self.shm is None:
            self.buf = np.empty((total,), np.uint8)
        self.pinned = bool(pin) and self._pin()
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(self.n):
            self._free.put(i)
        self._lock = threading.Lock()
        self.in_use = 0
        self.high_water = 0
        self._home: dict[int, object] = {}  # slot -> the decode process that owns it (see take_slots)
        self._give_back = None

    @property
    def name(self) -> str | None:
        """Shared-memory name for :func:`attach` (None when the pool is private to this process)."""
        return self.shm.name if self.shm is not None else None

    def _pin(self) -> bool:
        return pin_host(self.buf)

    def acquire(self, timeout: float | None = None) -> int | None:
        try:
            slot = self._free.get(timeout=timeout) if timeout is None or timeout > 0 else self._free.get_nowait()
        except queue.Empty:
            return None
        with self._lock:
            self.in_use += 1
            self.high_water = max(self.high_water, self.in_use)
        return slot

    def release(self, slot: int) -> None:
        self.release_many((slot,))

    def release_many(self, slots) -> None:
        """Release several slots; those owned by decode processes go home in one message per process."""
        slots = list(slots)
        if not slots:
            return
        with self._lock:
            self.in_use -= len(slots)
        homes: dict = {}
        for slot in slots:
            home = self._home.get(slot)
            if home is None:
                self._free.put(slot)
            else:
                homes.setdefault(id(home), (home, []))[1].append(slot)
        for home, mine in homes.values():
            self._give_back(home, mine)

    def free_count(self) -> int:
        return self._free.qsize()

    def take_slots(self, k: int, home, give_back) -> list[int]:
        """Hand ``k`` free slots for good to another process (a decode process, ``home``): it acquires them
        itself; :meth:`release` sends them back with ``give_back(home, [slot, ...])``."""
        slots = []
        for _ in range(k):
            try:
                slots.append(self._free.get_nowait())
            except queue.Empty:
                break
        for s in slots:
            self._home[s] = home
        self._give_back = give_back
        return slots

    def count_acquired(self, n: int = 1) -> None:
        """``n`` slots acquired by another process have arrived here (for in_use / high_water)."""
        with self._lock:
            self.in_use += n
            self.high_water = max(self.high_water, self.in_use)

    def view(self, slot: int, h: int, w: int) -> np.ndarray:
        return slot_view(self.buf, self.slot_bytes, slot, h, w)

    def nv12_view(self, slot: int, h: int, w: int) -> np.ndarray:
        return nv12_view(self.buf, self.slot_bytes, slot, h, w)

    def fits(self, h: int, w: int) -> bool:
        return h * w * 3 <= self.slot_bytes

    def _free_shm(self) -> None:
        if self.shm is not None:
            try:
                self.shm.close()
                self.shm.unlink()
            except Exception:
                pass
            self.shm = None

    def close(self) -> None:
        if getattr(self, "pinned", False):
            unpin_host(self.buf)
            self.pinned = False
        self.buf = np.empty(0, np.uint8)
        self._free_shm()


def pin_host(buf: np.ndarray) -> bool:
    """Register ``buf`` as page-locked memory with CUDA (``cudaHostRegister``), so copies between it and the GPU
    are DMAs with no staging copy; False (and a warning) where CUDA or the registration is unavailable."""
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        rc = torch.cuda.cudart().cudaHostRegister(buf.ctypes.data, buf.nbytes, 0)
        ok = int(rc if isinstance(rc, int) else getattr(rc, "value", rc)) == 0
        if not ok:
            log.warning("could not pin the frame pool (cudaHostRegister returned %s): copies are staged", rc)
        return ok
    except Exception as e:  # pragma: no cover - needs CUDA
        log.warning("could not pin the frame pool (%s): copies between host and GPU are staged", e)
        return False


def unpin_host(buf: np.ndarray) -> None:
    try:  # pragma: no cover - needs CUDA
        import torch

        torch.cuda.cudart().cudaHostUnregister(buf.ctypes.data)
    except Exception:
        pass


def slot_view(buf: np.ndarray, slot_bytes: int, slot: int, h: int, w: int) -> np.ndarray:
    start = slot * slot_bytes
    return buf[start:start + h * w * 3].reshape(h, w, 3)


def nv12_view(buf: np.ndarray, slot_bytes: int, slot: int, h: int, w: int) -> np.ndarray:
    """A slot holding an HxW frame as NV12 (NVDEC's output left unconverted): the (H*3/2, W) plane array."""
    start = slot * slot_bytes
    return buf[start:start + h * w * 3 // 2].reshape(h * 3 // 2, w)


class AttachedPool:
    """A worker process's read access to a :class:`FramePool` by its shared-memory name."""

    def __init__(self, name: str, slot_bytes: int) -> None:
        # spawned workers share the creator's resource tracker, so attaching registers the same name again
        # (a no-op there) and the creator's unlink at the end is the only one
        self.shm = shared_memory.SharedMemory(name=name)
        self.buf = np.ndarray((self.shm.size,), np.uint8, buffer=self.shm.buf)
        self.slot_bytes = slot_bytes
        self.pinned = False

    def pin(self) -> bool:
        """Register this process's mapping of the pool as page-locked (a decode process copying NVDEC frames
        from the GPU into its slots): see :func:`pin_host`."""
        if not self.pinned:
            self.pinned = pin_host(self.buf)
        return self.pinned

    def view(self, slot: int, h: int, w: int) -> np.ndarray:
        return slot_view(self.buf, self.slot_bytes, slot, h, w)

    def close(self) -> None:
        if self.pinned:
            unpin_host(self.buf)
            self.pinned = False
        self.buf = np.empty(0, np.uint8)
        try:
            self.shm.close()
        except Exception:
            pass

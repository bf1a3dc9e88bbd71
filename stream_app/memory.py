"""How the worker's process holds its memory: large message buffers go back to the
operating system when they are freed, and what the start built stays out of the garbage
collector's full passes.

glibc serves an allocation of 128 KiB or more with its own mmap, unmapped when freed, but
it raises that threshold to the size of the largest block freed so far (up to 32 MiB on
64-bit). After one 3 MiB request the worker's later 100 KiB-3 MiB buffers came from the
heap, where they stayed as resident memory: 5,000 hostile messages left the worker 23 to
71 MB larger, and 4.5 to 8.1 MB with the threshold held at 128 KiB. A worker holds it
(``M_MMAP_THRESHOLD``, which also stops the adjustment); ordinary objects are far smaller
and are not affected.

A full collection walks every object the collector tracks, and the worker's imports and
start leave some 200,000 (Faust, aiokafka, scikit-learn, pydantic...) that live as long as
the process: each full pass took 150-220 ms on the 2-core machine, and under load one came
every two seconds or so, each an event-loop stall (bench_state). The worker freezes them
once at its start (``gc.freeze``), so a full pass walks only what came later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

__all__ = ["MMAP_THRESHOLD", "freeze_start", "hold_mmap_threshold"]

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h


def hold_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where there is no glibc
    (another C library keeps its own policy, and the worker runs as it would anyway).

    Example:
        >>> import platform
        >>> hold_mmap_threshold() == (platform.libc_ver()[0] == "glibc")
        True
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    held = bool(mallopt(_M_MMAP_THRESHOLD, threshold))
    if not held:
        log.info("the C library kept its mmap threshold")
    return held


def freeze_start() -> int:
    """Collect, then take every object left (what the start built: modules, the app, its
    agents) out of the collector's passes; -> how many objects are frozen.

    They are still freed when nothing refers to them; only a reference cycle among them
    that becomes garbage later would stay, and the start's objects are kept for good.

    Example:
        >>> import gc
        >>> freeze_start() == gc.get_freeze_count() > 1000
        True
        >>> gc.unfreeze()  # a test process goes on as it was
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

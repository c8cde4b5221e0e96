"""glibc's malloc told to keep freed memory while a CPU model runs its passes.

A pass allocates activations of megabytes to tens of megabytes ([tokens, intermediate size] in
bfloat16: 38 MB for 2,000 tokens of Qwen2.5-1.5B) and frees them a few operations later. glibc
hands blocks over its mmap threshold (128 KiB, raised as such blocks are freed, to at most
32 MiB) straight back to the kernel and trims the top of its heap past its trim threshold, so the
next layer gets fresh pages: the kernel zeroes and maps every 4 KiB page on first touch. A matrix
multiply writing into fresh pages ran at half the rate of one writing into reused pages
(bfloat16 on AMX, [3693, 576] x [576, 1536], 570 against 1,200 GFLOP/s); the scoring figures
are in ``bench/README.md``, "Measured (2026-12-07, later: kept heap, MLP in pieces)".

``kept_heap()`` raises both thresholds for the passes of one call and, on leaving, sets glibc's
usual ceilings (a fixed 32 MiB mmap threshold and 64 MiB trim threshold, where the dynamic ones
end up after a model's first passes) and returns the free memory to the system
(``malloc_trim``), so what a run holds between calls (loading another model, decoding) is not
raised by it. The first allocation of a size after entering still grows the heap (torch
allocates with ``posix_memalign``, which does not refill a just-freed block of the same size at
once); later ones reuse it, so each call pays one layer's growth.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from typing import Any

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEPT_MMAP = 1 << 30
"""Within ``kept_heap()``, blocks up to 1 GiB come from the heap and go back to it."""
KEPT_TRIM = (1 << 31) - 1
"""Within ``kept_heap()``, free memory at the top of the heap stays up to 2 GiB."""
USUAL_MMAP_THRESHOLD = 32 << 20
USUAL_TRIM_THRESHOLD = 64 << 20

_lock = threading.Lock()
_depth = 0
_kept = False  # whether the outermost use set the thresholds


@cache
def _glibc() -> Any | None:
    """glibc loaded through ctypes, or None where the C library is another (macOS, musl)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def _set(libc: Any, mmap_threshold: int, trim_threshold: int) -> bool:
    # a glibc that caps the mmap threshold at 32 MiB (HEAP_MAX_SIZE / 2) refuses 1 GiB
    mmap_set = any(
        libc.mallopt(M_MMAP_THRESHOLD, size) == 1
        for size in (mmap_threshold, min(mmap_threshold, USUAL_MMAP_THRESHOLD))
    )
    return libc.mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1 and mmap_set


@contextmanager
def kept_heap() -> Iterator[bool]:
    """Within it, freed blocks of up to 1 GiB stay with the process for the next allocation.

    Yields whether glibc took the setting (False elsewhere, and where the user tunes glibc
    through ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``: then nothing changes).
    Process-wide while inside, for every thread; nested and concurrent uses restore the usual
    ceilings when the last one leaves. Never raises."""
    global _depth, _kept
    libc = _glibc() if available() else None
    with _lock:
        if libc is not None and _depth == 0:
            _kept = _set(libc, KEPT_MMAP, KEPT_TRIM)
        _depth += 1
        kept = libc is not None and _kept
    try:
        yield kept
    finally:
        with _lock:
            _depth -= 1
            if libc is not None and _depth == 0:
                _set(libc, USUAL_MMAP_THRESHOLD, USUAL_TRIM_THRESHOLD)
                libc.malloc_trim(0)
                _kept = False


def available() -> bool:
    """Whether ``kept_heap`` can act here: glibc, and thresholds the user has not set through
    ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` (leaving would replace them)."""
    names = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    return _glibc() is not None and not any(name in os.environ for name in names)


def largest_activation(config: Any, tokens: int, element_size: int) -> int:
    """Bytes of a pass's largest activation, [tokens, MLP width] (``intermediate_size``, else 4 x
    ``hidden_size``), for a decoder's text config."""
    width = getattr(config, "intermediate_size", None) or 4 * config.hidden_size
    return tokens * width * element_size


def worth_keeping(largest: int) -> bool:
    """Whether ``kept_for`` keeps the heap for passes whose largest activation is ``largest``
    bytes."""
    return largest > 2 * USUAL_MMAP_THRESHOLD


def kept_for(largest_activation: int) -> AbstractContextManager[bool]:
    """``kept_heap()`` for passes whose largest activation, in bytes, exceeds twice glibc's own
    ceiling (Qwen2.5-1.5B: 70 MiB a 4,096-token pass; 0.5B: 38), else a context that changes
    nothing (yields False). Smaller activations mostly stay in glibc's heap anyway: kept there
    they gained nothing (bfloat16: 0.97-0.99x at 135M-0.5B, against 1.07x at 1.5B:
    ``bench/README.md``, "Measured (2026-12-07, later: kept heap, MLP in pieces)"; in float32
    the 0.5B's 76 MiB is kept too, not measured)."""
    if worth_keeping(largest_activation):
        return kept_heap()
    return nullcontext(False)

"""glibc's heap kept while a CPU model scores (``labelbench.models.heap``): freed blocks are
reused instead of being mapped afresh, and the usual thresholds come back on leaving."""

from __future__ import annotations

import platform
import resource
import subprocess
import sys

import pytest

from labelbench.models import heap

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)


PROBE = """
import resource, torch
from labelbench.models import heap

def faults(megabytes=48):
    elements = megabytes << 20
    block = torch.ones(elements, dtype=torch.uint8)
    del block
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(elements, dtype=torch.uint8)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = faults()
with heap.kept_heap() as kept:
    inside = [faults() for _ in range(5)]
    with heap.kept_heap():
        pass
    nested = [faults() for _ in range(3)]
after = faults()
print(kept, outside, after, *inside, *nested)
"""


@glibc
def test_inside_freed_blocks_are_reused_and_outside_they_are_returned() -> None:
    """Page faults of allocating and filling a 48 MiB block a second time, after freeing the
    first, in a fresh process: outside, it is mapped afresh (over glibc's 32 MiB ceiling);
    inside, reused once the heap has grown, as a pass's later layers reuse what its first ones
    grew (where the first rounds land depends on what else the process has allocated: its
    thread count moves it), also after a nested use ends."""
    run = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    kept, outside, after, *rounds = run.stdout.split()
    inside, nested = [int(n) for n in rounds[:5]], [int(n) for n in rounds[5:]]
    pages = (48 << 20) // resource.getpagesize()
    assert kept == "True"
    assert int(outside) > pages // 2 and int(after) > pages // 2, run.stdout
    # at most the first two rounds grow the heap; every later one reuses it
    assert max(inside[2:] + nested) < pages // 10, run.stdout


def test_elsewhere_nothing_changes(monkeypatch) -> None:
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    with heap.kept_heap() as kept:
        assert not kept
    assert heap._depth == 0


def test_kept_only_for_activations_over_twice_glibcs_ceiling(monkeypatch) -> None:
    entered: list[bool] = []
    monkeypatch.setattr(heap, "kept_heap", lambda: _Recorder(entered))
    with heap.kept_for(2 * heap.USUAL_MMAP_THRESHOLD) as kept:
        assert kept is False
    with heap.kept_for(2 * heap.USUAL_MMAP_THRESHOLD + 1):
        pass
    assert entered == [True]


class _Recorder:
    """A context that records its entries (and stands in for glibc: ``malloc_trim``)."""

    def __init__(self, entered: list[bool]) -> None:
        self.entered = entered

    def malloc_trim(self, pad: int) -> int:
        return 1

    def __enter__(self) -> bool:
        self.entered.append(True)
        return True

    def __exit__(self, *exc: object) -> None:
        return None


def test_thresholds_the_user_set_are_left_alone(monkeypatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert not heap.available()
    with heap.kept_heap() as kept:
        assert not kept


def test_a_refused_setting_is_not_reported_kept_by_nested_uses(monkeypatch) -> None:
    monkeypatch.setattr(heap, "_glibc", lambda: _Recorder([]))
    monkeypatch.setattr(heap, "_set", lambda libc, mmap, trim: False)
    with heap.kept_heap() as outer, heap.kept_heap() as inner:
        assert (outer, inner) == (False, False)
    assert heap._depth == 0

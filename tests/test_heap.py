"""glibc's heap kept while a CPU model scores (``labelbench.models.heap``): freed blocks are
reused instead of being mapped afresh, and the usual thresholds come back on leaving."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from labelbench.models import heap

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)


def _faults_of_reallocating(megabytes: int = 48) -> int:
    """Page faults of allocating and filling a block a second time, after freeing the first."""
    elements = megabytes << 20
    block = torch.ones(elements, dtype=torch.uint8)
    del block
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(elements, dtype=torch.uint8)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc
def test_inside_freed_blocks_are_reused_and_outside_they_are_returned() -> None:
    pages = (48 << 20) // resource.getpagesize()
    assert _faults_of_reallocating() > pages // 2  # over 32 MiB: mapped afresh each time
    with heap.kept_heap() as kept:
        assert kept
        _faults_of_reallocating()  # the heap grows once (as a pass's first layer makes it)
        assert _faults_of_reallocating() < pages // 10
        with heap.kept_heap() as inner:  # nested: still kept after the inner one leaves
            assert inner
        assert _faults_of_reallocating() < pages // 10
    assert _faults_of_reallocating() > pages // 2


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
    def __init__(self, entered: list[bool]) -> None:
        self.entered = entered

    def __enter__(self) -> bool:
        self.entered.append(True)
        return True

    def __exit__(self, *exc: object) -> None:
        return None

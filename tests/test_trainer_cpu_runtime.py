"""CPU runtime settings: freed memory stays in the process while training, and threads fit the machine."""

import resource

import pytest
import torch

from nasgym.core.training import device as cpu_runtime
from nasgym.core.training.device import available_cpus, limit_threads, retained_heap

BIG = 64 * 1024 * 1024 // 4  # floats in 64 MiB: above glibc's 32 MiB limit for keeping freed blocks


def faults_of_big_blocks(count: int) -> int:
    """Minor page faults of allocating, touching and freeing ``count`` big blocks one after another."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(count):
        torch.ones(BIG)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(cpu_runtime._LIBC is None, reason="glibc only")
def test_retained_heap_reuses_freed_blocks():
    """By default glibc unmaps a freed 64 MiB block and the next one is faulted in (and zeroed) afresh."""
    pages = BIG * 4 // 4096
    with retained_heap() as active, retained_heap():  # nests
        assert active
        faults_of_big_blocks(16)  # the kept heap settles (alignment leftovers fragment it at first)
        assert faults_of_big_blocks(8) < 2 * pages  # default glibc: 8 * pages
    assert cpu_runtime._depth == 0 and not cpu_runtime._active


def test_threads_are_capped_at_the_usable_cpus_and_never_raised():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(available_cpus() + 3)
        assert limit_threads() == available_cpus()
        torch.set_num_threads(1)
        assert limit_threads() == 1  # a user's smaller setting stands
    finally:
        torch.set_num_threads(threads)


def test_retained_heap_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(cpu_runtime, "RETAIN_HEAP", False)
    with retained_heap() as active:
        assert not active

"""keep_freed_memory: a process that keeps its freed memory stops page-faulting on NumPy's temporaries."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from actlab.engine import memory

# A fresh process evaluates a leaky-ReLU-like expression on 2^17 float64 (1 MiB temporaries, three of
# them alive at once) 200 times, and prints the bytes of the pages the kernel handed over and
# zeroed during the loop (minor page faults x page size). With glibc's defaults the first free of a
# 1 MiB block raises the mmap threshold to 1 MiB and the trim threshold to 2 MiB, and the heap top is
# trimmed after each evaluation: about 375 MiB were faulted in on the development machine (96,000
# pages of 4 KiB, about half of the temporaries' pages).
LOOP = """
import resource, sys
import numpy as np
from actlab.engine import memory
if sys.argv[1] == "keep":
    memory.keep_freed_memory()
z = np.linspace(-1, 1, 2**17)
for _ in range(5):
    (np.maximum(z, 0.01 * z) + z * z).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    (np.maximum(z, 0.01 * z) + z * z).sum()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * resource.getpagesize())
"""


def _faulted_bytes(mode: str) -> int:
    # glibc's defaults: no malloc tunable inherited from the caller (they turn the dynamic threshold off)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", LOOP, mode], capture_output=True, text=True, check=True, env=env)
    return int(done.stdout)


@pytest.mark.skipif(memory.glibc() is None, reason="mallopt is glibc's")
def test_kept_memory_is_reused_instead_of_faulted_in_again():
    system, kept = _faulted_bytes("system"), _faulted_bytes("keep")
    assert system > 50 * 2**20, system  # a quarter of a MiB or more per evaluation
    assert kept < 2**20, kept  # the same memory again, every time


def test_it_says_what_it_did_and_may_be_called_again():
    first = memory.keep_freed_memory()
    assert first == memory.keep_freed_memory()
    expected = "glibc mallopt: mmap_threshold=33554432, trim_threshold=1073741824"
    assert first == (expected if memory.glibc() is not None else "system default: not glibc")

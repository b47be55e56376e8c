"""keep_freed_memory: a process that keeps its freed memory stops page-faulting on NumPy's temporaries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from actlab.engine import memory

# A fresh process computes a leaky-ReLU-like expression on 2^17 float64 (four 1 MiB temporaries,
# 256 pages each) 200 times, and reports the minor page faults (pages the kernel handed over and
# zeroed) of the loop. With glibc's defaults the heap is trimmed after each evaluation (more free
# at its top than twice the threshold that the first 1 MiB free set), measured 96,000 faults.
LOOP = """
import resource, sys
import numpy as np
from actlab.engine import memory
if sys.argv[1] == "keep":
    print(memory.keep_freed_memory(), file=sys.stderr)
z = np.linspace(-1, 1, 2**17)
for _ in range(5):
    (np.maximum(z, 0.01 * z) + z * z).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    (np.maximum(z, 0.01 * z) + z * z).sum()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", LOOP, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not memory.keep_freed_memory().startswith("glibc"), reason="mallopt is glibc's")
def test_kept_memory_is_reused_instead_of_faulted_in_again():
    assert _faults("system") > 200 * 200  # nearly every page of every fresh array
    assert _faults("keep") < 200  # the same memory again, every time


def test_it_says_what_it_did_and_may_be_called_again():
    first = memory.keep_freed_memory()
    assert first == memory.keep_freed_memory()
    assert first.startswith(("glibc mallopt: mmap_threshold=33554432", "system default: "))

"""Which CPU kernels NumPy and OpenBLAS may use, so that every x86-64 node gives the same bytes.

NumPy picks SIMD code for its element-wise functions and reductions at import time (AVX-512 where
the CPU has it, AVX2 otherwise), and OpenBLAS picks matrix-product kernels for the CPU it finds
(``SkylakeX``, ``Haswell``, ``Zen``, ...). The kernels round differently, so the same training on
two CPUs gives weights that differ in the last bits, and estimates that drift in the third or
fourth digit. Measured on the development machine (AMD EPYC with AVX-512): 8 seeds of a 3x64 net,
3 epochs of SGD on digits, gave six different weight hashes under the six combinations of
``OPENBLAS_CORETYPE`` in {default, Haswell, Sandybridge} and AVX-512 on or off in NumPy, for ReLU,
tanh and swish alike.

With ``cpu_kernels: portable`` (config key; the default) every job runs with :data:`PORTABLE`: the
kernels of the AVX2 level (x86-64-v3: Intel Haswell of 2013 and later, AMD Zen), which every
current x86-64 node has. ``cpu_kernels: native`` lets each node pick its fastest kernels, at the
cost of results that depend on the node. Both are set through the environment, which NumPy and
OpenBLAS read once when they are loaded, so the workflow sets them for every job it starts.
"""

from __future__ import annotations

from pathlib import Path

#: Environment of a job with portable kernels: OpenBLAS's Haswell kernels (AVX2 and FMA), and NumPy
#: without its AVX-512 code (the names NumPy 2.4 uses, then the names of earlier versions; a name a
#: version does not know is ignored).
PORTABLE = {
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": (
        "X86_V4 AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"
    ),
}

#: The CPU flags (``/proc/cpuinfo``) the portable kernels need.
REQUIRED_FLAGS = ("avx2", "fma")

CHOICES = ("portable", "native")


def environment(choice: str) -> dict[str, str]:
    """The environment variables a job runs with under ``choice`` (``portable`` or ``native``)."""
    if choice not in CHOICES:
        raise ValueError(f"cpu_kernels must be one of {', '.join(CHOICES)}, not {choice!r}")
    return dict(PORTABLE) if choice == "portable" else {}


def missing_flags(cpuinfo: str | None = None) -> list[str]:
    """The :data:`REQUIRED_FLAGS` this CPU lacks (none where ``/proc/cpuinfo`` cannot be read).

    Parameters
    ----------
    cpuinfo : str, optional
        Text in ``/proc/cpuinfo`` format; default: this machine's.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    lines = [line for line in cpuinfo.splitlines() if line.startswith("flags")]
    if not lines:
        return []
    flags = set(lines[0].partition(":")[2].split())
    return [flag for flag in REQUIRED_FLAGS if flag not in flags]

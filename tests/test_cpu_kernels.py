"""actlab.workflow.cpu_kernels: the environment of portable kernels, and the CPU flags they need."""

import pytest

from actlab.workflow import cpu_kernels

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx avx2 bmi1
processor\t: 1
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx avx2 bmi1
"""


def test_portable_pins_openblas_and_numpy_and_native_pins_nothing():
    portable = cpu_kernels.environment("portable")
    assert portable["OPENBLAS_CORETYPE"] == "Haswell"
    assert "X86_V4" in portable["NPY_DISABLE_CPU_FEATURES"].split()
    assert "AVX512_SKX" in portable["NPY_DISABLE_CPU_FEATURES"].split()
    assert cpu_kernels.environment("native") == {}
    portable["OPENBLAS_CORETYPE"] = "changed"
    assert cpu_kernels.PORTABLE["OPENBLAS_CORETYPE"] == "Haswell"  # a copy is handed out
    with pytest.raises(ValueError, match="portable, native"):
        cpu_kernels.environment("fast")


def test_missing_flags_reads_cpuinfo():
    assert cpu_kernels.missing_flags(CPUINFO) == []
    old = CPUINFO.replace(" fma", "").replace(" avx2", "")
    assert cpu_kernels.missing_flags(old) == ["avx2", "fma"]
    assert cpu_kernels.missing_flags("no flags line here") == []  # unknown: not refused

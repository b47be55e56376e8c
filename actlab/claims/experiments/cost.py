"""What an activation costs: forward plus backward time per element, against a reference activation.

Used by ``activation-compute-cost`` (sources 001 and 003). A cell times one activation and its
reference (ReLU by default) on the same array of ``size`` pre-activations ``z ~ N(0, 2^2)`` of one
``dtype``: one call of ``forward(z)`` and one of ``backward(z, a, g)`` (the work a hidden layer
adds to a training step), repeated ``number`` times per measurement so that a measurement lasts a
few milliseconds. The two are interleaved in one process, in alternating order, once per "seed"
(a repetition), so that whatever else loads the machine loads both; the per-repetition ratio

.. math:: r_k = t_k(\\text{activation}) / t_k(\\text{reference})

is the decision metric, and its interval is taken over the repetitions.

Freed memory is kept in the process while timing (:func:`actlab.engine.memory.keep_freed_memory`,
recorded with the cell's machine): the arrays each call allocates then come from memory the
process already holds, as in a training loop that runs in the workflow. Without it, glibc handed
blocks of 128 KiB and more (every array the claim times) back to the kernel, and the fresh pages of
the next call, zeroed on first touch, cost 6-7 ns per float64 element, against 1 ns for ReLU's
whole forward and backward pass: the timings measured the allocator, whose state depends on what
the process did before (the same cell gave a leaky-ReLU ratio of 1.03-1.16 inside the workflow and
1.3-1.5 outside it). Arrays of 32 MiB or more (over 4,194,304 float64 elements) are still mapped
fresh; the claim's are at most 8 MiB.

Wall-clock times depend on the machine (CPU, NumPy's build, its SIMD kernels), so each cell records
the machine it ran on (:func:`machine`), and verdicts of this experiment are the one exception to
the workflow's byte-identical results: the same commit gives other numbers on another machine, or
on the same one under another load.
"""

from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from actlab.claims.experiments.base import SPEC, Cell, CellResult, Experiment, metric
from actlab.engine.activations import Activation, get_activation
from actlab.engine.memory import keep_freed_memory

#: each measurement runs forward + backward on about this many elements in all (a few milliseconds)
ELEMENTS_PER_MEASUREMENT = 4_000_000


class ActivationCost(Experiment):
    name = "activation_cost"
    description = "forward + backward time per element of an activation, interleaved with a reference"
    machine_dependent = True
    params_schema = {
        "type": "object",
        "required": ["activation", "size", "dtype"],
        "properties": {
            "activation": SPEC,
            "reference": SPEC,
            "size": {"type": "integer", "minimum": 1, "maximum": 67_108_864},
            "dtype": {"enum": ["float32", "float64"]},
        },
    }

    def check(self, params):
        super().check(params)
        for key in ("activation", "reference"):
            if type(get_activation(params.get(key, "relu"))).build is not Activation.build:  # per-layer state
                raise ValueError(f"{key}: the cost is timed for stateless activations only (not PReLU or mixed)")

    dims = {"seconds_per_element": ("seed",), "reference_seconds_per_element": ("seed",)}

    def run(self, params, seeds, data):
        """Time every repetition; arrays ``seconds_per_element`` and ``reference_seconds_per_element`` ``(S,)``."""
        dtype = np.dtype(params["dtype"])
        z = (2.0 * seeds.rngs("data")[0].standard_normal(params["size"])).astype(dtype)
        grad = np.ones_like(z)
        timed = {
            "activation": get_activation(params["activation"]),
            "reference": get_activation(params.get("reference", "relu")),
        }
        number = max(1, math.ceil(ELEMENTS_PER_MEASUREMENT / params["size"]))
        allocator = keep_freed_memory()
        for act in timed.values():  # warm-up: first-call costs (allocation, imports) are not timed
            act.backward(z, act.forward(z), grad)
        times = {name: np.zeros(len(seeds)) for name in timed}
        for k in range(len(seeds)):
            order = list(timed) if k % 2 == 0 else list(reversed(timed))
            for name in order:
                act = timed[name]
                start = time.perf_counter()
                for _ in range(number):
                    act.backward(z, act.forward(z), grad)
                times[name][k] = (time.perf_counter() - start) / (number * params["size"])
        arrays = {
            "seconds_per_element": times["activation"],
            "reference_seconds_per_element": times["reference"],
        }
        return CellResult(arrays, {"machine": {**machine(), "allocator": allocator}, "number": number})

    @metric("forward + backward time of the activation / the reference's, per interleaved repetition")
    def time_ratio(self, cell: Cell) -> np.ndarray:
        a = cell.result.arrays
        return a["seconds_per_element"] / a["reference_seconds_per_element"]

    @metric("forward + backward time of the activation per element, in nanoseconds")
    def ns_per_element(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["seconds_per_element"] * 1e9


def machine() -> dict[str, str]:
    """The CPU, NumPy version and BLAS build the timings ran on (JSON-able)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "numpy": np.__version__,
        "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
        "python": platform.python_version(),
    }

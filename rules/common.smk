# Configuration and claims register: checked before any job runs (actlab.workflow.preflight), then
# expanded into cells. Unreadable result files are set aside here too, so that they are rebuilt
# instead of failing every job that reads them (actlab.workflow.integrity).
import os
import sys

from snakemake.exceptions import WorkflowError

from actlab.workflow import code_digest, cpu_kernels, integrity, preflight
from actlab.claims.experiments import EXPERIMENTS

# A cluster job step (not the main process) trusts the checks of the Snakemake that submitted it.
try:
    CLAIMS = preflight.prepare(
        config,
        f"{workflow.basedir}/config/schemas",
        check=workflow.is_main_process,
    )
except preflight.PreflightError as err:
    raise WorkflowError(str(err)) from None

RESULTS = config["results"]

# Module digests are kept between Snakemake processes (every cluster job step parses the workflow).
code_digest.use_cache(".snakemake/actlab-code-digests.json")

# Same bytes on every x86-64 node (actlab.workflow.cpu_kernels): the kernels NumPy and OpenBLAS may use,
# set in the environment that every job inherits, and a param of every rule whose numbers they
# decide, so that switching re-runs those jobs.
CPU_KERNELS = config["cpu_kernels"]
os.environ.update(cpu_kernels.environment(CPU_KERNELS))
_missing = cpu_kernels.missing_flags() if CPU_KERNELS == "portable" else []
if _missing:
    raise WorkflowError(
        f"cpu_kernels: portable needs a CPU with {', '.join(cpu_kernels.REQUIRED_FLAGS)}; this one "
        f"lacks {', '.join(_missing)}. Run with --config cpu_kernels=native "
        "(results then depend on the CPU)."
    )
# A subset (config key only) never replaces the full report: its report goes under results.
REPORTS = f"{RESULTS}/subset-report" if config["only"] else config["reports"]


def cell_files(claim_id, cell):
    """The two files of a trained cell: its arrays (.npz) and its description (.json)."""
    return [f"{RESULTS}/runs/{claim_id}/{cell}.{ext}" for ext in ("npz", "json")]


def claim_outputs(claim_id):
    """The verdict and figures of a judged claim."""
    return [
        f"{RESULTS}/claims/{claim_id}/{name}"
        for name in ("verdict.json", "figure.png", "verdict.png")
    ]


# Every trained cell, verdict and figure is a target of `all` too: Snakemake does not regenerate a
# deleted intermediate file whose downstream outputs are up to date, and a deleted one must re-run.
ALL_CELLS = [
    path
    for claim_id, claim in CLAIMS.items()
    for cell in claim["cells"]
    for path in cell_files(claim_id, cell)
]
ALL_CLAIM_OUTPUTS = [path for claim_id in CLAIMS for path in claim_outputs(claim_id)]

if workflow.is_main_process:
    for _line in integrity.set_aside(
        [
            *ALL_CELLS,
            *(f"{RESULTS}/data/{name}.npz" for name in config["datasets"]),
            *(
                f"{RESULTS}/claims/{c}/{f}"
                for c in CLAIMS
                for f in ("verdict.json", "mlflow.json")
            ),
        ],
        RESULTS,
    ):
        print(f"actlab: {_line}", file=sys.stderr)
    if config["only"]:
        print(
            f"actlab: config key only is set: the report of these {len(CLAIMS)} claims goes to {REPORTS}/, "
            f"{config['reports']}/ is left as it is",
            file=sys.stderr,
        )


wildcard_constraints:
    claim="[a-z0-9]+(-[a-z0-9]+)*",
    cell="[A-Za-z0-9.+_-]+",
    dataset="[A-Za-z0-9_-]+",


def code(*modules, files=()):
    """A params entry: the digest of the actlab code behind a job (actlab.workflow.code_digest), so that
    edits re-run the job. A function, so that only the rules a run builds jobs of compute it: a
    cluster job step parses the workflow for one job, and the digests of the other rules took
    1.7 of its 4.8 s."""
    return lambda wildcards: code_digest.digest(list(modules), list(files))


def experiment_code(wildcards):
    """Digest of the code that trains the claim's cells: its experiment module and what that imports."""
    experiment = EXPERIMENTS[CLAIMS[wildcards.claim]["experiment"]]
    modules = [
        type(experiment).__module__,
        "actlab.engine.seeding",
        "actlab.engine.datasets",
    ]
    return code_digest.digest(modules, [])


def cell_threads(wildcards):
    """Cores a training job holds: every core of the run (at most this machine's) for a wall-clock
    experiment, so that nothing else runs beside its timings; one otherwise."""
    experiment = EXPERIMENTS[CLAIMS[wildcards.claim]["experiment"]]
    return (
        min(workflow.cores, os.cpu_count() or 1) if experiment.machine_dependent else 1
    )


def cell_spec(wildcards):
    """What a training job needs of its cell: setting, params and seed stream. The seed count is
    the separate param n_seeds, so that a cell keeps the params it was trained with (and is not
    re-run) when the register adds a key of its own to the cells."""
    cell = CLAIMS[wildcards.claim]["cells"][wildcards.cell]
    return {key: cell[key] for key in ("setting", "params", "stream")}


def cell_seeds(wildcards):
    """How many of the claim's seeds the cell trains (fewer for context: decision.context.seeds)."""
    return CLAIMS[wildcards.claim]["cells"][wildcards.cell]["seeds"]


def cell_datasets(wildcards):
    """Data set name -> file for the cell's experiment."""
    claim = CLAIMS[wildcards.claim]
    params = claim["cells"][wildcards.cell]["params"]
    names = EXPERIMENTS[claim["experiment"]].datasets(params)
    return {name: f"{RESULTS}/data/{name}.npz" for name in names}


def claim_cells(wildcards):
    """The trained cells of a claim (both files of each)."""
    cells = CLAIMS[wildcards.claim]["cells"]
    return [path for cell in cells for path in cell_files(wildcards.claim, cell)]


def claim_datasets(claim_id):
    """Data set name -> spec of every data set the claim's cells use (hashed into config_hash)."""
    claim = CLAIMS[claim_id]
    experiment = EXPERIMENTS[claim["experiment"]]
    names = {
        n
        for cell in claim["cells"].values()
        for n in experiment.datasets(cell["params"])
    }
    return {name: config["datasets"][name] for name in sorted(names)}

# Configuration and claims register: validated before any job runs, then expanded into cells.
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from actlab.experiments import EXPERIMENTS
from actlab.ledger import LedgerError, check as check_ledger
from actlab.register import RegisterError, load_yaml, resolve

validate(config, "../config/schemas/config.schema.yaml")
try:
    _register = load_yaml(config["claims"])
    validate(_register, "../config/schemas/claims.schema.yaml")
    CLAIMS = {
        claim["id"]: claim
        for claim in resolve(
            _register, load_yaml(config["sources"])["sources"], config["profile"]
        )
    }
except RegisterError as err:
    raise WorkflowError(f"claims register {config['claims']}: {err}")
_unknown = sorted(set(config["only"]) - set(CLAIMS))
if _unknown:
    raise WorkflowError(
        f"config key 'only': unknown claim ids {_unknown}; known: {sorted(CLAIMS)}"
    )
if config["only"]:
    CLAIMS = {cid: CLAIMS[cid] for cid in config["only"]}
for _claim in CLAIMS.values():
    for _cell in _claim["cells"].values():
        for _name in EXPERIMENTS[_claim["experiment"]].datasets(_cell["params"]):
            if _name not in config["datasets"]:
                raise WorkflowError(
                    f"claim {_claim['id']!r}: dataset {_name!r} is not in the config's "
                    f"'datasets' ({', '.join(sorted(config['datasets']))})"
                )

# Last, once the register is well formed: a rule frozen by a full run may change only with an
# amendment. The ledger hashes the register as written (validate() above filled in defaults).
try:
    check_ledger(load_yaml(config["claims"]), config["ledger"])
except LedgerError as err:
    raise WorkflowError(f"claims register {config['claims']}: {err}")

RESULTS = config["results"]
REPORTS = config["reports"]


def cell_files(claim_id, cell):
    """The two files of a trained cell: its arrays (.npz) and its description (.json)."""
    return [f"{RESULTS}/runs/{claim_id}/{cell}.{ext}" for ext in ("npz", "json")]


# Every trained cell is a target of `all` too: Snakemake does not regenerate a deleted
# intermediate file whose downstream outputs are up to date, and a deleted cell must re-run.
ALL_CELLS = [
    path
    for claim_id, claim in CLAIMS.items()
    for cell in claim["cells"]
    for path in cell_files(claim_id, cell)
]


wildcard_constraints:
    claim="[a-z0-9]+(-[a-z0-9]+)*",
    cell="[A-Za-z0-9.+_-]+",
    dataset="[A-Za-z0-9_-]+",


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

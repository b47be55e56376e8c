# MLflow tracking of the judged claims (actlab.tracking). Only this rule talks to MLflow. It is one
# job for every claim, so MLflow is imported and the store opened once per workflow run; a claim
# whose runs in the store came from the same files is left alone, any other is logged again.
# Its outputs record the run ids, so Snakemake runs it when results, the tracking settings or the
# script change; `snakemake --forcerun track_claims` re-logs what is missing without re-training.
from actlab import tracking

# config tracking.uri, else $MLFLOW_TRACKING_URI, else an SQLite file in the working directory.
# The job gets it with the password masked (params end up in .snakemake/metadata and the log);
# the script reads the real one at run time (actlab.tracking.uri.resolve_uri).
TRACKING_URI = tracking.redact(tracking.resolve_uri(config["tracking"]["uri"]))
# With jobs on a cluster (profiles/slurm) results/ is on a shared file system: SQLite is refused
# there, and the message says to use an MLflow server.
if config["tracking"]["enabled"] and workflow.non_local_exec:
    try:
        tracking.check_cluster_store(tracking.resolve_uri(config["tracking"]["uri"]))
    except ValueError as err:
        raise WorkflowError(str(err)) from None
TRACKED = (
    expand(f"{RESULTS}/claims/{{claim}}/mlflow.json", claim=CLAIMS)
    if config["tracking"]["enabled"]
    else []
)


# Claim id -> what its runs are logged from, and where the run ids go.
TRACKED_CLAIMS = {
    claim: {
        "verdict": f"{RESULTS}/claims/{claim}/verdict.json",
        # each cell's files, data set files and training benchmark (its seconds: the run's duration)
        "cells": {
            cell: {
                "files": cell_files(claim, cell),
                "data": {
                    name: f"{RESULTS}/data/{name}.npz"
                    for name in sorted(
                        EXPERIMENTS[CLAIMS[claim]["experiment"]].datasets(
                            params["params"]
                        )
                    )
                },
                "benchmark": f"{RESULTS}/benchmarks/train_cell/{claim}/{cell}.tsv",
            }
            for cell, params in CLAIMS[claim]["cells"].items()
        },
        "record": f"{RESULTS}/claims/{claim}/mlflow.json",
        "claim": CLAIMS[claim],
        "datasets": claim_datasets(claim),
        "report": f"{REPORTS}/index.html",
    }
    for claim in CLAIMS
}


rule track_claims:
    input:
        verdicts=expand(f"{RESULTS}/claims/{{claim}}/verdict.json", claim=CLAIMS),
        figures=expand(
            f"{RESULTS}/claims/{{claim}}/{{figure}}.png",
            claim=CLAIMS,
            figure=["figure", "verdict"],
        ),
        cells=ALL_CELLS,
        data=sorted(
            {
                path
                for claim in TRACKED_CLAIMS.values()
                for cell in claim["cells"].values()
                for path in cell["data"].values()
            }
        ),
    output:
        TRACKED,
    log:
        "logs/track_claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/track_claims.tsv"
    localrule: True
    conda:
        "../envs/actlab.yaml"
    params:
        uri=TRACKING_URI,
        profile=config.get("profile"),
        seed=config["seed"],
        seeds_per_cell=config["tracking"]["seeds_per_cell"],
        claims=TRACKED_CLAIMS,
        code=code("actlab.tracking.log"),
    script:
        "../scripts/track_claims.py"

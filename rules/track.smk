# MLflow tracking of the judged claims (actlab.tracking). Only this rule talks to MLflow. It is one
# job for every claim, so MLflow is imported and the store opened once per workflow run; a claim
# whose runs in the store came from the same files is left alone, any other is logged again.
# Its outputs record the run ids, so Snakemake runs it when results, the tracking settings or the
# script change; `snakemake --forcerun track_claims` re-logs what is missing without re-training.
import os

# config tracking.uri, else $MLFLOW_TRACKING_URI, else an SQLite file in the working directory
TRACKING_URI = (
    config["tracking"]["uri"]
    or os.environ.get("MLFLOW_TRACKING_URI")
    or "sqlite:///mlflow.db"
)
TRACKED = (
    expand(f"{RESULTS}/claims/{{claim}}/mlflow.json", claim=CLAIMS)
    if config["tracking"]["enabled"]
    else []
)


# Claim id -> what its runs are logged from, and where the run ids go.
TRACKED_CLAIMS = {
    claim: {
        "verdict": f"{RESULTS}/claims/{claim}/verdict.json",
        "cells": {cell: cell_files(claim, cell) for cell in CLAIMS[claim]["cells"]},
        "record": f"{RESULTS}/claims/{claim}/mlflow.json",
        "claim": CLAIMS[claim],
        "datasets": claim_datasets(claim),
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
        seed=config["seed"],
        seeds_per_cell=config["tracking"]["seeds_per_cell"],
        claims=TRACKED_CLAIMS,
        code=code("actlab.tracking"),
    script:
        "../scripts/track_claims.py"

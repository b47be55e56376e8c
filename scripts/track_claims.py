"""Rule track_claims: log the judged claims to MLflow and record the run ids in each mlflow.json."""

import json
import sys
from pathlib import Path

from actlab import pipeline

with pipeline.rule_context(snakemake.log[0], snakemake.threads):
    from actlab import tracking

    claims = [
        tracking.ClaimFiles(
            verdict=Path(files["verdict"]),
            cells={cell: tuple(map(Path, pair)) for cell, pair in files["cells"].items()},
            context=tracking.run_context(snakemake.rule, files["claim"], snakemake.params.seed, files["datasets"]),
        )
        for files in snakemake.params.claims.values()
    ]
    try:
        records = tracking.track_claims(snakemake.params.uri, claims, snakemake.params.seeds_per_cell)
    except tracking.TrackingUnavailable as err:
        print(f"track_claims: {err}", file=sys.__stderr__)
        raise
    for claim, record in records.items():
        path = Path(snakemake.params.claims[claim]["record"])
        path.write_text(json.dumps(record, indent=2) + "\n")

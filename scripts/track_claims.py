"""Rule track_claims: log the judged claims to MLflow and record the run ids in each mlflow.json.

The rule's ``params.uri`` has its password masked; the real URI is resolved here, at run time,
from the config (``tracking.uri``) or ``$MLFLOW_TRACKING_URI``. A store that fails ends the job
with one message (what was logged, what was not) instead of a traceback.
"""

import json
import sys
from pathlib import Path

from actlab.workflow import pipeline

with pipeline.rule_context(snakemake.log[0], snakemake.threads):
    from actlab import tracking

    uri = tracking.resolve_uri(snakemake.config["tracking"]["uri"])
    if tracking.redact(uri) != snakemake.params.uri:
        raise RuntimeError(f"tracking URI changed since the workflow started: {tracking.redact(uri)}")
    claims = [
        tracking.ClaimFiles(
            verdict=Path(files["verdict"]),
            cells={cell: tuple(map(Path, c["files"])) for cell, c in files["cells"].items()},
            context=tracking.run_context(
                snakemake.rule,
                files["claim"],
                snakemake.params.seed,
                files["datasets"],
                snakemake.params.profile,
            ),
            data={cell: {name: Path(p) for name, p in c["data"].items()} for cell, c in files["cells"].items()},
            benchmarks={cell: Path(c["benchmark"]) for cell, c in files["cells"].items()},
            report=f"{Path(files['report']).resolve().as_uri()}#{claim}",
        )
        for claim, files in snakemake.params.claims.items()
    ]
    try:
        records = tracking.track_claims(uri, claims, snakemake.params.seeds_per_cell, snakemake.config["results"])
    except tracking.TrackingUnavailable as err:
        message = f"track_claims: {err}"
        print(message, flush=True)  # the job's log
        print(message, file=sys.__stderr__, flush=True)  # the terminal, without a traceback
        sys.exit(1)
    for claim, record in records.items():
        path = Path(snakemake.params.claims[claim]["record"])
        path.write_text(json.dumps(record, indent=2) + "\n")

# Claims about activation functions, each turned into a reproducible verdict.
#   snakemake --cores all                                     full suite -> reports/
#   snakemake --cores 2 --configfile config/quick.yaml        tiny settings -> results-quick/
#   snakemake --cores all results/claims/<claim-id>/verdict.json
# Each judged claim is also logged to MLflow (config key tracking; see README, "Tracking").
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/judge.smk"
include: "rules/report.smk"
include: "rules/track.smk"


# On a cluster (profiles/slurm) only training becomes a batch job; these run where Snakemake runs:
# each takes seconds, and tracking needs the MLflow server, which a login node can reach.
localrules:
    mark_results,
    make_dataset,
    judge_claim,
    render_report,
    track_claims,


rule all:
    default_target: True
    input:
        f"{REPORTS}/index.html",
        f"{REPORTS}/claims.md",
        ALL_CELLS,
        ALL_CLAIM_OUTPUTS,
        TRACKED,

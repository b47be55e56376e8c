"""Rule judge_claim: statistics over seeds, verdict JSON and figures of one claim."""

from pathlib import Path

from actlab.workflow import pipeline

with pipeline.rule_context(snakemake.log[0], snakemake.threads):
    claim = snakemake.params.claim
    runs = Path(snakemake.input[0]).parent
    cell_paths = {cell: (runs / f"{cell}.npz", runs / f"{cell}.json") for cell in claim["cells"]}
    pipeline.judge_claim(snakemake.params.seed, claim, cell_paths, Path(snakemake.output.verdict).parent)

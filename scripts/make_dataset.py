"""Rule make_dataset: generate one data set of the config."""

from actlab.workflow import pipeline

with pipeline.rule_context(snakemake.log[0], snakemake.threads):
    pipeline.dataset(
        name=snakemake.wildcards.dataset,
        spec=snakemake.params.spec,
        seed=snakemake.params.seed,
        out=snakemake.output[0],
    )

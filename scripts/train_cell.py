"""Rule train_cell: train every seed of one cell of a claim as one ensemble."""

from actlab.workflow import pipeline

with pipeline.rule_context(snakemake.log[0], snakemake.threads):
    pipeline.train_cell(
        seed=snakemake.params.seed,
        claim_id=snakemake.wildcards.claim,
        experiment=snakemake.params.experiment,
        n_seeds=snakemake.params.n_seeds,
        cell_id=snakemake.wildcards.cell,
        cell=snakemake.params.cell,
        dataset_paths={k: v for k, v in snakemake.input.items() if k != "profile"},
        out_npz=snakemake.output.npz,
        out_json=snakemake.output.json,
    )

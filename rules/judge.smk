rule judge_claim:
    input:
        claim_cells,
    # update(): Snakemake keeps the previous verdict and figures until the job succeeds, and
    # restores them if it fails (a failed job's outputs are otherwise deleted)
    output:
        verdict=update(f"{RESULTS}/claims/{{claim}}/verdict.json"),
        figure=report(
            update(f"{RESULTS}/claims/{{claim}}/figure.png"),
            caption="../report/figure.rst",
            category="Claims",
            subcategory="{claim}",
        ),
        summary=report(
            update(f"{RESULTS}/claims/{{claim}}/verdict.png"),
            caption="../report/verdict.rst",
            category="Claims",
            subcategory="{claim}",
        ),
    log:
        "logs/judge_claim/{claim}.log",
    benchmark:
        f"{RESULTS}/benchmarks/judge_claim/{{claim}}.tsv"
    conda:
        "../envs/actlab.yaml"
    params:
        seed=config["seed"],
        claim=lambda wildcards: CLAIMS[wildcards.claim],
        cpu_kernels=CPU_KERNELS,
        code=code("actlab.workflow.pipeline"),
    script:
        "../scripts/judge_claim.py"

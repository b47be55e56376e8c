rule judge_claim:
    input:
        claim_cells,
    output:
        verdict=f"{RESULTS}/claims/{{claim}}/verdict.json",
        figure=report(
            f"{RESULTS}/claims/{{claim}}/figure.png",
            caption="../report/figure.rst",
            category="Claims",
            subcategory="{claim}",
        ),
        summary=report(
            f"{RESULTS}/claims/{{claim}}/verdict.png",
            caption="../report/verdict.rst",
            category="Claims",
            subcategory="{claim}",
        ),
    log:
        "logs/judge_claim/{claim}.log",
    conda:
        "../envs/actlab.yaml"
    params:
        seed=config["seed"],
        claim=lambda wildcards: CLAIMS[wildcards.claim],
    script:
        "../scripts/judge_claim.py"

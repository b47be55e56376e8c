rule render_report:
    input:
        verdicts=expand(f"{RESULTS}/claims/{{claim}}/verdict.json", claim=CLAIMS),
        figures=expand(
            f"{RESULTS}/claims/{{claim}}/{{figure}}.png",
            claim=CLAIMS,
            figure=["figure", "verdict"],
        ),
        # the training jobs' times, which the report's provenance adds up
        benchmarks=[
            f"{RESULTS}/benchmarks/train_cell/{claim_id}/{cell}.tsv"
            for claim_id, claim in CLAIMS.items()
            for cell in claim["cells"]
        ],
    # update(): the previous report stays until this job succeeds (restored if it fails)
    output:
        html=update(f"{REPORTS}/index.html"),
        markdown=update(f"{REPORTS}/claims.md"),
        figures=update(directory(f"{REPORTS}/figures")),
    log:
        "logs/render_report.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_report.tsv"
    conda:
        "../envs/actlab.yaml"
    params:
        profile=config["profile"],
        code=code(
            "actlab.claims.report",
            files=["claims/templates/report.html.j2", "claims/templates/claims.md.j2"],
        ),
    script:
        "../scripts/render_report.py"

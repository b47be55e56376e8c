rule render_report:
    input:
        verdicts=expand(f"{RESULTS}/claims/{{claim}}/verdict.json", claim=CLAIMS),
        figures=expand(
            f"{RESULTS}/claims/{{claim}}/{{figure}}.png",
            claim=CLAIMS,
            figure=["figure", "verdict"],
        ),
    output:
        html=f"{REPORTS}/index.html",
        markdown=f"{REPORTS}/claims.md",
        figures=directory(f"{REPORTS}/figures"),
    log:
        "logs/render_report.log",
    conda:
        "../envs/actlab.yaml"
    params:
        profile=config["profile"],
    script:
        "../scripts/render_report.py"

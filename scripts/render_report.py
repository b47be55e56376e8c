"""Rule render_report: the self-contained HTML report and the GitHub-readable Markdown table."""

from actlab.claims import report
from actlab.workflow import pipeline

with pipeline.rule_context(snakemake.log[0], snakemake.threads):
    report.render(
        verdict_paths=snakemake.input.verdicts,
        html_path=snakemake.output.html,
        markdown_path=snakemake.output.markdown,
        figure_dir=snakemake.output.figures,
        profile=snakemake.params.profile,
        benchmark_paths=snakemake.input.benchmarks,
    )

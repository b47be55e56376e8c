# The results directory says which profile wrote it, so that another profile cannot overwrite it
# (actlab.workflow.preflight.check_profile refuses before any job runs).
rule mark_results:
    output:
        f"{RESULTS}/{preflight.PROFILE_MARK}",
    log:
        "logs/mark_results.log",
    conda:
        "../envs/actlab.yaml"
    params:
        mark=preflight.profile_mark(config["profile"]),
    shell:
        "printf '%s\\n' {params.mark:q} > {output} 2> {log}"


rule make_dataset:
    output:
        f"{RESULTS}/data/{{dataset}}.npz",
    log:
        "logs/make_dataset/{dataset}.log",
    benchmark:
        f"{RESULTS}/benchmarks/make_dataset/{{dataset}}.tsv"
    conda:
        "../envs/actlab.yaml"
    params:
        spec=lambda wildcards: config["datasets"][wildcards.dataset],
        seed=config["seed"],
        cpu_kernels=CPU_KERNELS,
        code=code("actlab.engine.datasets"),
    script:
        "../scripts/make_dataset.py"

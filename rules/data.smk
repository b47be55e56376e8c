rule make_dataset:
    output:
        f"{RESULTS}/data/{{dataset}}.npz",
    log:
        "logs/make_dataset/{dataset}.log",
    conda:
        "../envs/actlab.yaml"
    params:
        spec=lambda wildcards: config["datasets"][wildcards.dataset],
        seed=config["seed"],
    script:
        "../scripts/make_dataset.py"

rule train_cell:
    input:
        unpack(cell_datasets),
        profile=f"{RESULTS}/{preflight.PROFILE_MARK}",
    output:
        npz=f"{RESULTS}/runs/{{claim}}/{{cell}}.npz",
        json=f"{RESULTS}/runs/{{claim}}/{{cell}}.json",
    log:
        "logs/train_cell/{claim}/{cell}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_cell/{{claim}}/{{cell}}.tsv"
    conda:
        "../envs/actlab.yaml"
    threads: cell_threads
    params:
        seed=config["seed"],
        experiment=lambda wildcards: CLAIMS[wildcards.claim]["experiment"],
        n_seeds=cell_seeds,
        cell=cell_spec,
        cpu_kernels=CPU_KERNELS,
        code=experiment_code,
    script:
        "../scripts/train_cell.py"

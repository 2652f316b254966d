rule prepare:
    input:
        raw_folder,
    output:
        directory(paths.SLICES),
    params:
        settings=lambda w: stage_params("prepare", w.dataset),
    log:
        "logs/prepare/{dataset}.log",
    threads: 1
    resources:
        runtime=120,
        mem_mb=8000,
    shell:
        "medgan prepare {wildcards.dataset} > {log} 2>&1"

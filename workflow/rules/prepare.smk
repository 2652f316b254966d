rule prepare:
    input:
        raw_folder,
    output:
        directory(paths.SLICES),
    params:
        settings=lambda w: stage_params("prepare", w.dataset),
    log:
        "logs/prepare/{dataset}.log",
    threads: stage_threads("prepare")
    resources:
        **stage_resources("prepare"),
    shell:
        "medgan prepare {wildcards.dataset} > {log} 2>&1"

rule train:
    input:
        slices_of_experiment,
    output:
        model=paths.MODEL,
        losses=paths.TRAIN_LOG,
        progress=paths.PROGRESS,
    log:
        "logs/train/{experiment}.log",
    threads: stage_threads("train")
    resources:
        **stage_resources("train"),
    params:
        settings=lambda w: stage_params("train", w.experiment),
    shell:
        "medgan train {wildcards.experiment} > {log} 2>&1"

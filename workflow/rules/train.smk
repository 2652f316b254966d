rule train:
    input:
        slices_of_experiment,
    output:
        model=paths.MODEL,
        losses=paths.TRAIN_LOG,
    params:
        settings=lambda w: stage_params("train", w.experiment),
    log:
        "logs/train/{experiment}.log",
    threads: PARAMS["train"]["threads"]
    resources:
        gpu=PARAMS["train"]["gpus"],
        runtime=24 * 60,
        mem_mb=16000,
    shell:
        "medgan train {wildcards.experiment} > {log} 2>&1"

# One job per replicate (training seed) of each experiment: config.replicate_seed(seed, replicate).
rule train:
    input:
        slices_of_experiment,
    output:
        model=paths.MODEL,
        losses=paths.TRAIN_LOG,
        progress=paths.PROGRESS,
    log:
        "logs/train/{experiment}/r{replicate}.log",
    threads: stage_threads("train")
    resources:
        **stage_resources("train"),
    params:
        settings=lambda w: stage_params("train", w.experiment, w.replicate),
    shell:
        "medgan train {wildcards.experiment} --replicate {wildcards.replicate} > {log} 2>&1"

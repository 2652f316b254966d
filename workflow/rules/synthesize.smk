rule synthesize:
    input:
        model=replicate_zero_model,
        slices=slices_of_experiment,
    output:
        directory(paths.SYNTHETIC),
    log:
        "logs/synthesize/{experiment}.log",
    threads: stage_threads("synthesize")
    resources:
        **stage_resources("synthesize"),
    params:
        settings=lambda w: stage_params("synthesize"),
    shell:
        "medgan synthesize {wildcards.experiment} > {log} 2>&1"

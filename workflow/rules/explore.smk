rule explore:
    input:
        slices=paths.SLICES,
        samples=replicate_zero_samples_of_dataset,
        models=replicate_zero_models_of_dataset,
    output:
        paths.EXPLORE,
    log:
        "logs/explore/{dataset}.log",
    threads: stage_threads("explore")
    resources:
        **stage_resources("explore"),
    params:
        settings=lambda w: stage_params("explore", w.dataset),
    shell:
        "medgan explore {wildcards.dataset} > {log} 2>&1"

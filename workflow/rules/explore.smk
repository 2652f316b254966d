rule explore:
    input:
        slices=paths.SLICES,
        samples=lambda w: expand(paths.SAMPLES, experiment=experiments_of_dataset(w)),
        models=lambda w: expand(paths.MODEL, experiment=experiments_of_dataset(w)),
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

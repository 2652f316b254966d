rule evaluate:
    input:
        samples=paths.SAMPLES,
        slices=slices_of_experiment,
        train_log=paths.TRAIN_LOG,
        synthetic=synthetic_of_experiment,
    output:
        metrics=paths.METRICS,
        closest_pairs=paths.CLOSEST_PAIRS,
    params:
        settings=lambda w: stage_params("evaluate"),
    log:
        "logs/evaluate/{experiment}.log",
    threads: stage_threads("evaluate")
    resources:
        **stage_resources("evaluate"),
    shell:
        "medgan evaluate {wildcards.experiment} > {log} 2>&1"


rule baseline:
    input:
        paths.SLICES,
    output:
        paths.BASELINE,
    params:
        settings=lambda w: stage_params("evaluate"),
    log:
        "logs/baseline/{dataset}.log",
    threads: stage_threads("evaluate")
    resources:
        **stage_resources("evaluate"),
    shell:
        "medgan baseline {wildcards.dataset} > {log} 2>&1"


rule summarize:
    input:
        expand(paths.METRICS, experiment=list(PARAMS["experiments"])),
        expand(paths.BASELINE, dataset=list(PARAMS["datasets"])),
    output:
        csv=paths.SUMMARY_CSV,
        md=paths.SUMMARY_MD,
    params:
        settings=lambda w: stage_params("evaluate"),
    log:
        "logs/summarize.log",
    threads: stage_threads("summarize")
    resources:
        **stage_resources("summarize"),
    shell:
        "medgan summarize > {log} 2>&1"

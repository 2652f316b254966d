rule evaluate:
    input:
        samples=paths.SAMPLES,
        slices=slices_of_experiment,
        train_log=paths.TRAIN_LOG,
        synthetic=synthetic_of_experiment,
    output:
        metrics=paths.REPLICATE_METRICS,
        closest_pairs=paths.CLOSEST_PAIRS,
        provenance=paths.EVALUATE_PROVENANCE,
    log:
        "logs/evaluate/{experiment}/r{replicate}.log",
    threads: stage_threads("evaluate")
    resources:
        **stage_resources("evaluate"),
    params:
        settings=lambda w: stage_params("evaluate"),
    shell:
        "medgan evaluate {wildcards.experiment} --replicate {wildcards.replicate} > {log} 2>&1"


# The experiment's entry over its replicates: every seed's values, mean, across-seed interval.
rule aggregate:
    input:
        replicate_metrics_of_experiment,
    output:
        metrics=paths.METRICS,
        provenance=paths.AGGREGATE_PROVENANCE,
    log:
        "logs/aggregate/{experiment}.log",
    threads: stage_threads("aggregate")
    resources:
        **stage_resources("aggregate"),
    params:
        settings=lambda w: stage_params("aggregate", w.experiment),
    shell:
        "medgan aggregate {wildcards.experiment} > {log} 2>&1"


# First as soon as the slices exist: it extracts the real sets' features that every evaluate
# job then reads from the cache, instead of an evaluate waiting on the cache's lock.
rule baseline:
    input:
        paths.SLICES,
    output:
        metrics=paths.BASELINE,
        provenance=paths.BASELINE_PROVENANCE,
    log:
        "logs/baseline/{dataset}.log",
    priority: 2
    threads: stage_threads("evaluate")
    resources:
        **stage_resources("evaluate"),
    params:
        settings=lambda w: stage_params("evaluate"),
    shell:
        "medgan baseline {wildcards.dataset} > {log} 2>&1"


rule summarize:
    input:
        expand(paths.METRICS, experiment=list(PARAMS["experiments"])),
        expand(paths.BASELINE, dataset=list(PARAMS["datasets"])),
        expand(paths.AGGREGATE_PROVENANCE, experiment=list(PARAMS["experiments"])),
        every_replicate(paths.EVALUATE_PROVENANCE),
        expand(paths.BASELINE_PROVENANCE, dataset=list(PARAMS["datasets"])),
    output:
        csv=paths.SUMMARY_CSV,
        md=paths.SUMMARY_MD,
        provenance=paths.PROVENANCE_SUMMARY,
    log:
        "logs/summarize.log",
    threads: stage_threads("summarize")
    resources:
        **stage_resources("summarize"),
    params:
        settings=lambda w: stage_params("evaluate"),
    shell:
        "medgan summarize > {log} 2>&1"

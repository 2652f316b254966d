# prepare, scattered: list the raw dataset's units (a checkpoint: phantom raw data does not
# exist when the DAG is built), convert each unit in its own job (one raw case of a volumes
# dataset, or a shard of files of a 2D dataset) into data/interim/, then gather them into
# data/slices/DATASET (split by patient, manifest). `medgan prepare DATASET` alone — DVC's
# stage — runs all three steps in one process and reuses interim units that are current.


checkpoint prepare_units:
    input:
        raw_folder,
    output:
        paths.UNIT_LIST,
    log:
        "logs/prepare/{dataset}/units.log",
    threads: stage_threads("prepare")
    resources:
        **stage_resources("prepare"),
    params:
        settings=lambda w: stage_params("prepare", w.dataset),
    shell:
        "medgan prepare {wildcards.dataset} --list-units > {log} 2>&1"


rule prepare_unit:
    input:
        paths.UNIT_LIST,
    output:
        directory(paths.UNIT),
    log:
        "logs/prepare/{dataset}/unit-{unit}.log",
    threads: stage_threads("prepare")
    resources:
        **stage_resources("prepare"),
    params:
        settings=lambda w: stage_params("prepare", w.dataset),
    shell:
        "medgan prepare {wildcards.dataset} --unit {wildcards.unit} > {log} 2>&1"


rule prepare:
    input:
        raw=raw_folder,
        units=converted_units,
    output:
        directory(paths.SLICES),
    log:
        "logs/prepare/{dataset}.log",
    threads: stage_threads("prepare")
    resources:
        **stage_resources("prepare"),
    params:
        settings=lambda w: stage_params("prepare", w.dataset),
    shell:
        "medgan prepare {wildcards.dataset} > {log} 2>&1"

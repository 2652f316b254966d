# Shareable generators (params.yaml `export.experiments`): the package folder and its zip. Each
# one is also declared under `artifacts:` in dvc.yaml for `dvc artifacts get`.
rule export:
    input:
        model=replicate_zero_model,
        metrics=paths.METRICS,
        train_log=replicate_zero_train_log,
        baseline=baseline_of_experiment,
        slices=slices_of_experiment,
        turing_answers=turing_answers_of_experiment,
    output:
        folder=directory(paths.EXPORT),
        zip=paths.EXPORT_ZIP,
    log:
        "logs/export/{experiment}.log",
    threads: stage_threads("export")
    resources:
        **stage_resources("export"),
    params:
        settings=lambda w: stage_params("export", w.experiment),
    shell:
        "medgan export {wildcards.experiment} > {log} 2>&1"

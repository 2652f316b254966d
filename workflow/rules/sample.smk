# Seconds of work that unblock evaluate and turing: right after each training.
rule sample:
    input:
        paths.MODEL,
    output:
        samples=directory(paths.SAMPLES),
        grid=paths.GRID,
        interpolation=paths.INTERPOLATION,
    log:
        "logs/sample/{experiment}.log",
    priority: 1
    threads: stage_threads("sample")
    resources:
        **stage_resources("sample"),
    params:
        settings=lambda w: stage_params("sample"),
    shell:
        "medgan sample {wildcards.experiment} > {log} 2>&1"

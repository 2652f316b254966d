# Seconds of work that unblock evaluate and turing: right after each training.
rule sample:
    input:
        paths.MODEL,
    output:
        samples=directory(paths.SAMPLES),
        grid=paths.GRID,
        interpolation=paths.INTERPOLATION,
    log:
        "logs/sample/{experiment}/r{replicate}.log",
    priority: 1
    threads: stage_threads("sample")
    resources:
        **stage_resources("sample"),
    params:
        settings=lambda w: stage_params("sample", w.experiment, w.replicate),
    shell:
        "medgan sample {wildcards.experiment} --replicate {wildcards.replicate} > {log} 2>&1"

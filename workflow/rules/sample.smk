rule sample:
    input:
        paths.MODEL,
    output:
        samples=directory(paths.SAMPLES),
        grid=paths.GRID,
    params:
        settings=lambda w: stage_params("sample"),
    log:
        "logs/sample/{experiment}.log",
    threads: 1
    resources:
        runtime=30,
        mem_mb=4000,
    shell:
        "medgan sample {wildcards.experiment} > {log} 2>&1"

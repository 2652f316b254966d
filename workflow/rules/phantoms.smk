rule phantoms:
    output:
        directory(paths.RAW),
    params:
        settings=lambda w: stage_params("phantoms", w.name),
    log:
        "logs/phantoms/{name}.log",
    threads: 1
    resources:
        runtime=30,
        mem_mb=4000,
    shell:
        "medgan phantoms {wildcards.name} > {log} 2>&1"

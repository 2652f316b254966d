rule phantoms:
    output:
        directory(paths.RAW),
    log:
        "logs/phantoms/{name}.log",
    threads: stage_threads("phantoms")
    resources:
        **stage_resources("phantoms"),
    params:
        settings=lambda w: stage_params("phantoms", w.name),
    shell:
        "medgan phantoms {wildcards.name} > {log} 2>&1"

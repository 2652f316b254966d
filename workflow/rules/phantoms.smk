rule phantoms:
    output:
        directory(paths.RAW),
    params:
        settings=lambda w: stage_params("phantoms", w.name),
    log:
        "logs/phantoms/{name}.log",
    threads: stage_threads("phantoms")
    resources:
        **stage_resources("phantoms"),
    shell:
        "medgan phantoms {wildcards.name} > {log} 2>&1"

rule turing:
    input:
        samples=replicate_zero_samples,
        slices=slices_of_experiment,
    output:
        page=paths.TURING_PAGE,
        key=paths.TURING_KEY,
    log:
        "logs/turing/{experiment}.log",
    threads: stage_threads("turing")
    resources:
        **stage_resources("turing"),
    params:
        settings=lambda w: stage_params("turing"),
    shell:
        "medgan turing {wildcards.experiment} > {log} 2>&1"


rule report:
    input:
        report_inputs(),
        answers=turing_answer_files,
    output:
        paths.REPORT,
    log:
        "logs/report.log",
    threads: stage_threads("report")
    resources:
        **stage_resources("report"),
    params:
        settings=lambda w: stage_params("report"),
    shell:
        "medgan report > {log} 2>&1"

# medgan workflow: thin wiring around the `medgan` CLI verbs; params.yaml is the configuration.
# Local:   snakemake --cores 2
# Cluster: snakemake --profile slurm      (README: "Running on a Slurm cluster")
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


# The software environment of every rule. No conda channel is reachable from the machines this
# project is built and tested on, so no rule names a `conda:` environment; Snakemake has no switch
# to silence one lint (snakemake issue #2085), so its "conda environment or container for each
# rule" lint is answered by one image built from the lock (workflow/envs/medgan.def). It is used
# only with `--sdm apptainer`; without that flag rules run in the current (locked) environment.
# README: "Running with a conda environment or an Apptainer image".
container: "medgan.sif"


include: "workflow/rules/common.smk"
include: "workflow/rules/phantoms.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/explore.smk"
include: "workflow/rules/export.smk"


rule all:
    input:
        final_outputs(),

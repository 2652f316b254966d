# medgan workflow: thin wiring around the `medgan` CLI verbs; params.yaml is the configuration.
# Local:   snakemake --cores 2
# Cluster: snakemake --profile slurm      (README: "Running on a Slurm cluster")
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/phantoms.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_outputs(),

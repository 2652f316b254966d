import json
import os
from pathlib import Path

import yaml
from snakemake.utils import validate

from medgan import config as medgan_config
from medgan import paths

# The schema fills defaults into `config`; medgan's own check adds cross-references.
validate(config, schema="../schemas/params.schema.yaml")
PARAMS = medgan_config.validate(config, "params.yaml (as Snakemake loaded it)")


def export_effective_params():
    """When --config/--configfile changed params.yaml's values, hand the CLI verbs the same
    values through $MEDGAN_PARAMS, so that both read one configuration."""
    on_disk = Path("params.yaml")
    if (
        on_disk.exists()
        and medgan_config.validate(yaml.safe_load(on_disk.read_text())) == PARAMS
    ):
        return
    effective = Path(".snakemake/medgan/params.yaml")
    text = yaml.safe_dump(PARAMS, sort_keys=True)
    if not effective.exists() or effective.read_text() != text:
        effective.parent.mkdir(parents=True, exist_ok=True)
        effective.write_text(text)
    os.environ[medgan_config.PARAMS_ENV] = str(effective.resolve())


export_effective_params()


wildcard_constraints:
    name="|".join(PARAMS.get("phantoms", {})) or "^$",
    dataset="|".join(PARAMS["datasets"]),
    experiment="|".join(PARAMS["experiments"]),
    unit="[^/]+",


def stage_params(stage, target=None):
    """The params slice a stage reads, as JSON: Snakemake reruns a job when it changes."""
    return json.dumps(medgan_config.stage_params(PARAMS, stage, target), sort_keys=True)


def stage_threads(stage):
    return PARAMS["resources"][stage]["threads"]


def stage_resources(stage):
    """Job resources from params.yaml's `resources.<stage>`, in the Slurm executor's terms."""
    spec = PARAMS["resources"][stage]
    resources = {"mem_mb": spec["mem_mb"], "runtime": spec["runtime"]}
    if spec["gpus"] > 0:
        resources["gpu"] = spec["gpus"]
        if spec["gpu_model"]:
            resources["gpu_model"] = spec["gpu_model"]
    return resources


def raw_folder(wildcards):
    return PARAMS["datasets"][wildcards.dataset]["raw"]


def converted_units(wildcards):
    """The interim folders of every unit the checkpoint `prepare_units` listed."""
    listing = checkpoints.prepare_units.get(dataset=wildcards.dataset).output[0]
    units = json.loads(Path(listing).read_text())["units"]
    return [
        paths.UNIT.format(dataset=wildcards.dataset, unit=u["unit_id"]) for u in units
    ]


def slices_of_experiment(wildcards):
    return paths.SLICES.format(
        dataset=PARAMS["experiments"][wildcards.experiment]["dataset"]
    )


def baseline_of_experiment(wildcards):
    return paths.BASELINE.format(
        dataset=PARAMS["experiments"][wildcards.experiment]["dataset"]
    )


def synthetic_of_experiment(wildcards):
    """The experiment's synthetic set when the pipeline makes one (segmentation_utility reads it)."""
    if wildcards.experiment in PARAMS["synthesize"]["experiments"]:
        return [paths.SYNTHETIC.format(experiment=wildcards.experiment)]
    return []


def report_inputs():
    """Every file the report reads (the Turing answers are found by `turing_answer_files`)."""
    experiments = list(PARAMS["experiments"])
    per_experiment = [
        paths.METRICS,
        paths.CLOSEST_PAIRS,
        paths.TRAIN_LOG,
        paths.PROGRESS,
        paths.GRID,
        paths.INTERPOLATION,
        paths.SAMPLES,
        paths.TURING_PAGE,
        paths.TURING_KEY,
    ]
    return [
        *[
            out
            for pattern in per_experiment
            for out in expand(pattern, experiment=experiments)
        ],
        *expand(paths.BASELINE, dataset=list(PARAMS["datasets"])),
        *expand(paths.SLICES, dataset=list(PARAMS["datasets"])),
        *expand(paths.EXPLORE, dataset=list(PARAMS["datasets"])),
    ]


def experiments_of_dataset(wildcards):
    return [
        n for n, e in PARAMS["experiments"].items() if e["dataset"] == wildcards.dataset
    ]


def turing_answer_files(wildcards):
    """Readers' answer CSVs present now: adding one makes the report rerun."""
    folders = [
        Path(paths.TURING_ANSWERS.format(experiment=e)) for e in PARAMS["experiments"]
    ]
    return sorted(str(p) for folder in folders for p in folder.glob("*.csv"))


def turing_answers_of_experiment(wildcards):
    """Readers' answer CSVs of one experiment present now: the export's metadata scores them."""
    folder = Path(paths.TURING_ANSWERS.format(experiment=wildcards.experiment))
    return sorted(str(p) for p in folder.glob("*.csv"))


def final_outputs():
    experiments = list(PARAMS["experiments"])
    return [
        paths.SUMMARY_CSV,
        paths.SUMMARY_MD,
        *expand(paths.GRID, experiment=experiments),
        *expand(paths.INTERPOLATION, experiment=experiments),
        *expand(paths.PROGRESS, experiment=experiments),
        *expand(paths.TRAIN_LOG, experiment=experiments),
        *expand(paths.SLICES, dataset=list(PARAMS["datasets"])),
        *expand(paths.EXPLORE, dataset=list(PARAMS["datasets"])),
        *expand(paths.SYNTHETIC, experiment=PARAMS["synthesize"]["experiments"]),
        *expand(paths.EXPORT_ZIP, experiment=PARAMS["export"]["experiments"]),
        paths.REPORT,
    ]

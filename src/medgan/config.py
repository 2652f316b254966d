"""Load and validate params.yaml — the one configuration of the pipeline."""

from __future__ import annotations

import copy
import functools
import os
import re
import string
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from .errors import MedganError

DEFAULT_PARAMS = "params.yaml"
PAIRED_VARIANTS = ("pix2pix", "pix2pix_inpaint", "ddpm_mask")  # = medgan.variants' paired ones (no torch here)
EXPORTABLE_VARIANTS = ("vanilla", "dcgan", "cgan", "wgan_gp", "seednet", "pix2pix")  # medgan export rebuilds these
AUTO_DIFFAUGMENT = ("translation", "cutout")  # train.diffaugment: auto, unpaired variants
PARAMS_ENV = "MEDGAN_PARAMS"  # set by the Snakefile when --config/--configfile override params.yaml


class ConfigError(MedganError, ValueError):
    """params.yaml is malformed; the message names the key and the fix."""


def load_schema() -> dict:
    text = resources.files("medgan").joinpath("params.schema.yaml").read_text()
    return yaml.safe_load(text)


@functools.cache
def _schema_validator() -> jsonschema.Draft202012Validator:
    """A plain validator of the whole schema; `evolve(schema=part)` checks one section with
    its $refs resolved against the whole."""
    return jsonschema.Draft202012Validator(load_schema())


def _validator_filling_defaults():
    # jsonschema validates but does not fill defaults; this is the extension its docs recommend.
    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _hint(error: jsonschema.ValidationError) -> str:
    """The fix for a bad experiment, dataset or phantom name (they become paths and command words)."""
    if error.validator in ("pattern", "maxLength") and error.schema == load_schema()["$defs"]["name"]:
        return (" — rename it: a name becomes a folder and a word in shell commands, so use letters, digits, "
                "_ and - only, starting with a letter or digit")
    return ""


def _unshared(value):
    """A deep copy in which no two places share one object: filling defaults into a YAML anchor
    (`a: &x {...}`, `b: *x`) must not leak one entry's defaults into the other (deepcopy keeps
    such sharing)."""
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared(v) for v in value]
    return copy.deepcopy(value)


def validate(params: dict, source: str = DEFAULT_PARAMS) -> dict:
    """Return a validated copy of `params` with schema defaults filled in."""
    params = _unshared(params)
    errors = sorted(_validator_filling_defaults()(load_schema()).iter_errors(params), key=str)
    if errors:
        lines = [f"  - at '{_key_path(e)}': {e.message}{_hint(e)}" for e in errors]
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(lines))
    _check_references(params, source)
    return params


def _check_references(params: dict, source: str) -> None:
    problems = []
    for name, exp in params["experiments"].items():
        dataset = params["datasets"].get(exp["dataset"])
        if dataset is None:
            problems.append(
                f"  - at 'experiments.{name}.dataset': unknown dataset '{exp['dataset']}' "
                f"(known: {', '.join(params['datasets'])})"
            )
        elif exp["class"] != "all" and exp["class"] not in dataset["classes"]:
            problems.append(
                f"  - at 'experiments.{name}.class': '{exp['class']}' is not one of "
                f"datasets.{exp['dataset']}.classes {dataset['classes']}"
            )
        else:
            try:
                training_settings(params, name)
            except ConfigError as err:
                problems.append(str(err).split("\n", 1)[1])
    for name, dataset in params["datasets"].items():
        problems += [f"  - at 'datasets.{name}.{key}': {text}" for key, text in _dataset_problems(dataset)]
    problems += [f"  - at 'synthesize.{key}': {text}" for key, text in _synthesize_problems(params)]
    problems += [f"  - at 'export.{key}': {text}" for key, text in _export_problems(params)]
    problems += [f"  - at 'evaluate.{key}': {text}" for key, text in _baseline_class_problems(params)]
    if problems:
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(problems))


def _listed_experiment_problems(params: dict, names: list[str], variants, need: str) -> list[tuple[str, str]]:
    """A stage's list of experiments (synthesize, export): each known, each of a variant it handles."""
    problems = []
    for i, name in enumerate(names):
        exp = params["experiments"].get(name)
        if exp is None:
            problems.append((f"experiments[{i}]", f"unknown experiment '{name}' (known: {', '.join(params['experiments'])})"))
        elif exp["variant"] not in variants:
            problems.append((f"experiments[{i}]", f"'{name}' is a {exp['variant']} experiment; {need}"))
    return problems


def _synthesize_problems(params: dict) -> list[tuple[str, str]]:
    settings = params["synthesize"]
    problems = _listed_experiment_problems(params, settings["experiments"], PAIRED_VARIANTS,
                                           "synthesis needs a label map -> image one (pix2pix, pix2pix_inpaint)")
    for key in ("add_count", "radius_mm", "grow_mm", "shrink_mm"):
        low, high = settings[key]
        if low > high:
            problems.append((key, f"[{low}, {high}]: the first value is the minimum — swap them"))
    return problems


def _export_problems(params: dict) -> list[tuple[str, str]]:
    return _listed_experiment_problems(params, params["export"]["experiments"], EXPORTABLE_VARIANTS,
                                       f"medgan export handles {', '.join(EXPORTABLE_VARIANTS)}")


def _baseline_class_problems(params: dict) -> list[tuple[str, str]]:
    """evaluate.baseline_classes, when listed: known classes, and every experiment's among them."""
    listed = params["evaluate"]["baseline_classes"]
    if listed is None:
        return []
    known = {c for dataset in params["datasets"].values() for c in dataset.get("classes", [])} | {"all"}
    problems = [(f"baseline_classes[{i}]", f"'{c}' is no dataset's class (known: {', '.join(sorted(known))})")
                for i, c in enumerate(listed) if c not in known]
    for name, exp in params["experiments"].items():
        if exp["class"] not in listed:
            problems.append(("baseline_classes", f"lacks '{exp['class']}', the class of experiment '{name}' "
                             "(its verdict needs that floor): add it, or set null for every class"))
    return problems


LAYOUTS_OF_KIND = {"volumes": ("lits", "msd", "custom"), "class_folders": ("covid_ct", "brain_mri", "custom", "lits"),
                   "paired_folders": ("custom", "lits")}  # lits: the schema default, no preset for 2D kinds


def _dataset_problems(dataset: dict) -> list[tuple[str, str]]:
    """(key, problem) pairs of one dataset entry that the schema cannot express."""
    problems = []
    if abs(sum(dataset["split"].values()) - 1.0) > 1e-6:
        problems.append(("split", "ratios must sum to 1"))
    if dataset["layout"] not in LAYOUTS_OF_KIND[dataset["kind"]]:
        known = [x for x in LAYOUTS_OF_KIND[dataset["kind"]] if x != "lits" or dataset["kind"] == "volumes"]
        problems.append(("layout", f"'{dataset['layout']}' is not a layout of kind {dataset['kind']} "
                                   f"(use {', '.join(known)})"))
    for key in ("window", "input_range"):
        value = dataset.get(key)
        if isinstance(value, list) and not value[0] < value[1]:
            example = [-100, 400] if key == "window" else [0, 4095]
            problems.append((key, f"{value}: low must be below high (e.g. {example})"))
    problems += _pattern_problems(dataset)
    nonfinite = dataset.get("nonfinite") or {}
    if nonfinite.get("action") == "replace" and "value" not in nonfinite:
        problems.append(("nonfinite", "action 'replace' needs a `value` in stored units (e.g. -1024 for air in HU)"))
    folders = [str(dataset.get("folders", {}).get(c, c)) for c in dataset["classes"]] \
        if dataset["kind"] == "class_folders" and dataset.get("folders") else []
    shared = sorted({f for f in folders if folders.count(f) > 1})
    if shared:
        problems.append(("folders", f"{shared} would be read for several classes — give each class its own folder"))
    if dataset["kind"] == "paired_folders" and dataset["images_dir"] == dataset["masks_dir"]:
        problems.append(("masks_dir", f"'{dataset['masks_dir']}' is also images_dir — every image would be its "
                                      f"own mask; point it at the mask folder"))
    if dataset["kind"] == "volumes":
        for key in ("organ_labels", "lesion_labels"):
            outside = sorted(set(dataset[key]) - set(dataset["label_values"]))
            if outside:
                problems.append((key, f"{outside} not in label_values {dataset['label_values']} — no slice "
                                      f"could ever count them; fix {key} or label_values"))
    return problems


LABEL_FIELDS = ("dir", "case", "name", "ext")


def _pattern_problems(dataset: dict) -> list[tuple[str, str]]:
    problems = []
    if dataset.get("case_regex"):
        try:
            groups = re.compile(dataset["case_regex"]).groups
        except re.error as err:
            problems.append(("case_regex", f"not a valid regular expression ({err})"))
        else:
            if groups < 1:
                problems.append(("case_regex", "needs a group, e.g. '^volume-(\\d+)\\.nii', whose match is the case id"))
    if dataset.get("labels"):
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(dataset["labels"]) if f is not None}
        except ValueError as err:
            problems.append(("labels", f"not a valid pattern ({err}); fields are {{{'}, {'.join(LABEL_FIELDS)}}}"))
        else:
            unknown = sorted(fields - set(LABEL_FIELDS))
            if unknown:
                problems.append(("labels", f"unknown field(s) {unknown}; use {{{'}, {'.join(LABEL_FIELDS)}}}"))
    return problems


def params_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(PARAMS_ENV) or DEFAULT_PARAMS)


def load(path: str | os.PathLike | None = None) -> dict:
    """Read, validate and default-fill params.yaml (or `$MEDGAN_PARAMS`, or `path`)."""
    path = params_path(path)
    origin = f" (from ${PARAMS_ENV})" if os.environ.get(PARAMS_ENV) and str(path) == os.environ[PARAMS_ENV] else ""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise ConfigError(f"{path}{origin} {what}: run from the project root or pass --params FILE")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}{origin}: cannot be read as text ({err}) — pass a YAML params file") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, got {type(raw).__name__}")
    return validate(raw, str(path))


def experiment(params: dict, name: str) -> dict:
    try:
        return params["experiments"][name]
    except KeyError:
        known = ", ".join(params["experiments"])
        raise ConfigError(f"unknown experiment '{name}' (params.yaml has: {known})") from None


def replicate_seed(seed: int, replicate: int) -> int:
    """The training and sampling seed of replicate `replicate` of an experiment: replicate 0 keeps
    params `seed` (R = 1 reproduces runs made before replicates existed); replicate i >= 1 takes
    the first 32-bit word of numpy's SeedSequence([seed, i]) (well mixed, deterministic, and far
    from the small offsets train.py adds to a seed: seed + 1000 * rank, seed + 1 for strips)."""
    if replicate < 0:
        raise ValueError(f"replicate {replicate}: must be >= 0")
    if replicate == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, replicate]).generate_state(1)[0])


def replicates_of(params: dict, name: str) -> int:
    """R of an experiment: its own `replicates`, else the top-level one."""
    return experiment(params, name).get("replicates") or params["replicates"]


def check_replicate(params: dict, name: str, replicate: int) -> int:
    count = replicates_of(params, name)
    if not 0 <= replicate < count:
        raise ConfigError(f"replicate {replicate} of '{name}' does not exist: params.yaml gives it {count} "
                          f"replicate(s), numbered 0..{count - 1}")
    return replicate


def dataset(params: dict, name: str) -> dict:
    try:
        return params["datasets"][name]
    except KeyError:
        known = ", ".join(params["datasets"])
        raise ConfigError(f"unknown dataset '{name}' (params.yaml has: {known})") from None


def classes_of(params: dict, exp: dict) -> list[str]:
    """The classes an experiment learns: its one class, or all of its dataset's."""
    classes = params["datasets"][exp["dataset"]]["classes"]
    return list(classes) if exp["class"] == "all" else [exp["class"]]


def _merged(defaults: dict, overrides: dict) -> dict:
    """Overrides on top of the section's values; a nested mapping (train.divergence) is merged
    key by key, so that overriding one of its keys keeps the others."""
    merged = dict(defaults)
    for key, value in overrides.items():
        both = isinstance(value, dict) and isinstance(defaults.get(key), dict)
        merged[key] = {**defaults[key], **value} if both else value
    return merged


def _overridden(defaults: dict, overrides, where: str, section: tuple[str, ...]) -> dict:
    """A section with an experiment's overrides applied, validated against the schema of the
    top-level section at `section` (the same definition, so the same rules)."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"params.yaml is invalid:\n  - at '{where}': must be a mapping of "
                          f"{'.'.join(section)} keys, got {overrides!r}")
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ConfigError(f"params.yaml is invalid:\n  - at '{where}': unknown key(s) {unknown} "
                          f"(known: {', '.join(sorted(defaults))})")
    merged = _merged(defaults, overrides)
    validator = _schema_validator()
    schema = validator.schema
    for key in section:
        schema = schema["properties"][key]
    errors = sorted(validator.evolve(schema=schema).iter_errors(merged), key=str)
    if errors:
        lines = [f"  - at '{where}.{_key_path(e)}': {e.message}" for e in errors]
        raise ConfigError("params.yaml is invalid:\n" + "\n".join(lines))
    return merged


def training_settings(params: dict, name: str, replicate: int = 0) -> dict:
    """Everything that decides a training run of one replicate of an experiment, overrides
    applied. The replicate enters only through its seed, and the experiment's `replicates` count
    not at all: raising R leaves the existing replicates' runs current."""
    from . import labels

    exp = {k: v for k, v in experiment(params, name).items() if k != "replicates"}
    variant = exp["variant"]
    paired = variant in PAIRED_VARIANTS
    train = _overridden(params["train"], exp.get("train", {}), f"experiments.{name}.train", ("train",))
    if train["diffaugment"] == "auto":  # pix2pix-official has no DiffAugment: on only when asked
        train["diffaugment"] = [] if paired else list(AUTO_DIFFAUGMENT)
    settings = {
        "seed": replicate_seed(params["seed"], replicate),
        "experiment": exp,
        "classes": classes_of(params, exp),
        "image_size": list(exp.get("image_size") or params["datasets"][exp["dataset"]]["image_size"]),
        "hp": _overridden(params["variants"][variant], exp.get("hp", {}), f"experiments.{name}.hp",
                          ("variants", variant)),
        "train": train,
    }
    if paired:
        settings["labels"] = labels.encoding_of(params["datasets"][exp["dataset"]]).as_dict()
    return settings


def stage_params(params: dict, stage: str, target: str | None = None, replicate: int = 0) -> dict:
    """The slice of params a stage reads (of one replicate, for train and sample): Snakemake
    reruns a job when it changes, and dvc.yaml lists the same keys under `params:`."""
    if stage == "phantoms":
        return {"seed": params["seed"], "phantoms": params["phantoms"][target]}
    if stage == "prepare":
        return {"seed": params["seed"], "dataset": params["datasets"][target]}
    if stage == "train":
        return training_settings(params, target, replicate)
    if stage == "sample":
        return {"seed": replicate_seed(params["seed"], replicate), "sample": params["sample"]}
    if stage == "aggregate":
        return {"replicates": replicates_of(params, target)}
    if stage == "evaluate":
        return {"seed": params["seed"], "evaluate": params["evaluate"],
                "segmentation": params["synthesize"]["segmentation"]}
    if stage == "synthesize":
        return {"seed": params["seed"], "synthesize": {k: v for k, v in params["synthesize"].items()
                                                       if k not in ("experiments", "segmentation")},
                "dropout": params["sample"]["dropout"]}
    if stage == "turing":
        return {"seed": params["seed"], "turing": params["turing"], "real_split": params["evaluate"]["real_split"]}
    if stage == "explore":
        return {"seed": params["seed"], "dataset": params["datasets"][target],
                "real_split": params["evaluate"]["real_split"],
                "experiments": {n: e for n, e in params["experiments"].items() if e["dataset"] == target}}
    if stage == "export":
        exp = params["experiments"][target]
        return {"seed": params["seed"], "experiment": exp, "dataset": params["datasets"][exp["dataset"]],
                "dropout": params["sample"]["dropout"]}
    if stage == "report":
        return {"seed": params["seed"], "experiments": params["experiments"],
                "real_split": params["evaluate"]["real_split"]}
    raise ValueError(f"unknown stage {stage}")

"""export: one trained generator as a package a colleague loads without medgan's pipeline.

results/export/<experiment>/ holds generator.safetensors (weights, no pickle), architecture.json
(how to rebuild the network, its preprocessing and label encoding), the package code medigan imports
(__init__.py with generate(model_file, num_samples, output_path, save_images, **custom), and
verbatim copies of medgan's networks.py, blocks.py and errors.py, so the network is defined once),
metadata.json (medigan's record: execution, selection, description, plus a `medgan` block with every
number's interval, n and seed) and MODEL_CARD.md (Mitchell et al. 2019). results/export/<experiment>.zip
holds the same folder under its package name: the file medigan's package_link points to.

Finding a run's files goes through model_file, metrics_file and training_log_file only, so that
per-replicate paths change three small functions.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from importlib import resources
from pathlib import Path

import pandas as pd

from . import __version__, config, paths, variants
from .atomic import atomic_dir, atomic_file, read_json
from .errors import MedganError

WEIGHTS = "generator.safetensors"
ARCHITECTURE = "architecture.json"
METADATA = "metadata.json"
MODEL_CARD = "MODEL_CARD.md"
# variants whose generator the export rebuilds with torch alone (the DDPMs need MONAI and a
# sampler, the inpainting generator medgan.inpaint: not exported yet)
EXPORTABLE = config.EXPORTABLE_VARIANTS
MEDGAN_CODE = ("errors.py", "networks.py", "blocks.py")  # copied verbatim: one definition of the networks
PACKAGE_CODE = ("__init__.py", "safetensors_reader.py")  # templates/export/
BATCH_UNPAIRED, BATCH_PAIRED = 64, 32  # medgan.sample's batch sizes: the same batches give the same images
RUNTIME_DEPENDENCIES = ["torch", "numpy", "pillow"]
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same export gives the same zip bytes


class ExportError(MedganError, ValueError):
    """An experiment that cannot be exported (variant, missing inputs); the message says why."""


# -- where a run's files are (one function each; replicates change only these) ---------------

def model_file(experiment: str, replicate: int = 0) -> Path:
    return paths.path(paths.MODEL, experiment=experiment, replicate=replicate)


def metrics_file(experiment: str, replicate: int = 0) -> Path:
    """The experiment's aggregate over its seeds (every seed's value under `seeds`)."""
    return paths.path(paths.METRICS, experiment=experiment)


def training_log_file(experiment: str, replicate: int = 0) -> Path:
    return paths.path(paths.TRAIN_LOG, experiment=experiment, replicate=replicate)


# -- names ---------------------------------------------------------------------------------------

def package_name(experiment: str) -> str:
    """A Python identifier (medigan imports the package by this name)."""
    name = re.sub(r"\W", "_", experiment)
    return f"medgan_{name}" if not name or name[0].isdigit() else name


# -- the package's pieces -----------------------------------------------------------------------

def architecture(model: dict, exp: dict, dataset: dict, sample_settings: dict) -> dict:
    """What the export's own code needs to rebuild the generator and draw images like `medgan sample`."""
    spec = variants.VARIANTS[model["variant"]]
    hp = model["hp"]
    return {
        "format": "medgan-export", "format_version": 1, "medgan_version": __version__,
        "variant": model["variant"], "hp": hp, "z_dim": hp.get("z_dim"),
        "image_size": list(model["image_size"]), "classes": list(model["classes"]),
        "conditional": spec.conditional, "paired": spec.paired,
        "labels": model.get("labels"),
        "batch_size": BATCH_PAIRED if spec.paired else BATCH_UNPAIRED,
        "test_time_dropout": bool(sample_settings["dropout"]) if spec.paired else False,
        "weights": WEIGHTS,
        "preprocessing": preprocessing(dataset, exp),
        "output": "uint8 grayscale, 0..255 = the window's low..high (CT: HU window); one channel",
    }


def preprocessing(dataset: dict, exp: dict) -> dict:
    return {"dataset_kind": dataset["kind"], "window_hu": dataset.get("window"),
            "input_range": dataset.get("input_range"),
            "image_size": list(exp.get("image_size") or dataset["image_size"]),
            "classes": list(dataset["classes"])}


def write_weights(state_dict: dict, path: Path) -> None:
    """One metadata entry only: safetensors writes a map's keys in no fixed order, and the same
    model must export to the same bytes (architecture.json says what the tensors are)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "medgan-export"})


def copy_code(folder: Path) -> None:
    medgan = resources.files("medgan")
    for name in MEDGAN_CODE:
        (folder / name).write_text(medgan.joinpath(name).read_text())
    for name in PACKAGE_CODE:
        (folder / name).write_text(medgan.joinpath("templates", "export", name).read_text())


# -- numbers ------------------------------------------------------------------------------------

SEED_FIELDS = ("value", "ci_low", "ci_high", "n_real", "n_fake", "seed")


def per_seed(entry: dict | None) -> list[dict] | None:
    """A metric's values as a list, one dict per seed (an aggregate across seeds would list its
    seeds' entries under `per_seed`; a single run is a list of one)."""
    if not entry or "value" not in entry or entry.get("skipped"):
        return None
    runs = entry.get("seeds") or entry.get("per_seed") or [entry]
    return [{k: run.get(k, entry.get(k)) for k in SEED_FIELDS} for run in runs]


def value(metrics: dict, name: str):
    entry = metrics.get(name) or {}
    return None if entry.get("skipped") else entry.get("value")


def fid_ratio(metrics: dict) -> float | None:
    """FID(real half, real half) / FID(real, synthetic): medigan's ratio, 1 = as close as two real
    sets: the inverse of medgan's relative_fid (over several seeds, of its median over the seeds)."""
    entry = metrics.get("relative_fid") or {}
    if entry.get("skipped") or not entry.get("value"):
        return None
    return 1.0 / entry["value"]


def difference(metrics: dict, a: str, b: str) -> float | None:
    x, y = value(metrics, a), value(metrics, b)
    return None if x is None or y is None else x - y


def performance(metrics: dict, turing: dict | None) -> dict:
    """medigan's `selection.performance`, filled from medgan's numbers (None where medgan has none)."""
    return {
        "SSIM": value(metrics, "paired_ssim_image"), "MSE": None, "NSME": None,
        "PSNR": value(metrics, "paired_psnr_image"), "IS": None,
        "FID": value(metrics, "fid"), "FID_no_images": (metrics.get("fid") or {}).get("n_fake") if value(metrics, "fid") is not None else None,
        "FID_ratio": fid_ratio(metrics), "FID_RADIMAGENET": None, "FID_RADIMAGENET_ratio": None,
        "turing_test": (turing or {}).get("value"),  # its interval and counts: medgan.turing_test
        "CLF_delta": value(metrics, "utility_auc_gain"),
        "SEG_delta": difference(metrics, "segmentation_mixed_dice", "segmentation_real_dice"),
        "DET_delta": None,
        "CLF": {"trained_on_fake": value(metrics, "utility_synthetic_auc"),
                "trained_on_real_and_fake": value(metrics, "utility_mixed_auc"),
                "trained_on_real": value(metrics, "utility_real_auc")},
        "SEG": {"trained_on_fake": value(metrics, "segmentation_synthetic_dice"),
                "trained_on_real_and_fake": value(metrics, "segmentation_mixed_dice"),
                "trained_on_real": value(metrics, "segmentation_real_dice")},
        "DET": {"trained_on_fake": None, "trained_on_real_and_fake": None, "trained_on_real": None},
    }


DEFINITIONS = {
    "FID": "Fréchet Inception Distance, real held-out images vs generated (pytorch-fid's InceptionV3, 2048 features)",
    "FID_ratio": "FID(real half A, real half B) / FID(real, synthetic), halves split by patient: 1 = as close as "
                 "two real sets; 1 / medgan's relative_fid (synthetic over real-vs-real; with several training "
                 "seeds, of its median over the seeds)",
    "CLF_delta": "classifier AUC trained on real + synthetic minus AUC trained on real only (utility_auc_gain)",
    "SEG_delta": "segmentation Dice trained on real + synthetic minus Dice trained on real only (point values)",
    "SSIM": "paired (label map -> image) SSIM to the real held-out image",
    "PSNR": "paired PSNR to the real held-out image, dB",
    "turing_test": "readers' accuracy telling real from synthetic (0.5 = chance), pooled over readers",
}
CARD_METRICS = ("fid", "relative_fid", "kid", "relative_kid", "frd", "relative_frd", "prdc_precision",
                "prdc_recall", "prdc_density", "prdc_coverage", "diversity_ratio", "memorisation_share_pixel",
                "memorisation_share_feature", "paired_ssim_image", "paired_psnr_image", "paired_mae_hu_image",
                "utility_auc_gain", "segmentation_real_dice", "segmentation_mixed_dice")


def medgan_block(metrics_json: dict, source: Path, baseline: dict | None, arch: dict, provenance: dict,
                 guard: list[dict]) -> dict:
    metrics = metrics_json.get("metrics", {})
    return {
        "experiment": metrics_json.get("experiment"), "variant": arch["variant"],
        "metrics_file": source.as_posix(),
        "metrics": {name: runs for name, entry in sorted(metrics.items()) if (runs := per_seed(entry))},
        "about": {name: {k: v for k, v in entry.items() if k not in SEED_FIELDS and k not in ("per_seed", "seeds")}
                  for name, entry in sorted(metrics.items()) if per_seed(entry)},
        "skipped": {name: entry["skipped"] for name, entry in sorted(metrics.items()) if entry.get("skipped")},
        "definitions": DEFINITIONS,
        "real_vs_real_floor": baseline,
        "protocol": {"real_split": metrics_json.get("real_split"), "n_real": metrics_json.get("n_real"),
                     "n_fake": metrics_json.get("n_fake"), "n_train": metrics_json.get("n_train"),
                     "interval": "95% interval; each metric's method (bootstrap over images or patients, "
                                 "jackknife for the relative metrics) is under `about`"},
        "training": {"steps": metrics_json.get("settings", {}).get("trained_steps"), "guard": guard,
                     "settings": metrics_json.get("settings")},
        "provenance": provenance,
    }


def turing_result(experiment: str) -> dict | None:
    """Pooled readers' accuracy when answers were scored, else None."""
    from . import turing

    files = turing.answer_files(experiment)
    if not files:
        return None
    pooled = turing.score(turing.load_key(experiment), files)["pooled"]["accuracy"]
    return {k: pooled.get(k) for k in ("value", "ci_low", "ci_high", "k", "n")}


def guard_findings(log_path: Path) -> list[dict]:
    """Steps where the training guard fired, from the training log."""
    if not log_path.is_file():
        return []
    log = pd.read_csv(log_path, keep_default_na=False)
    if "guard" not in log:
        return []
    fired = log["guard"].astype(str).str.strip() != ""
    return [{"step": int(s), "reason": str(g)} for s, g in zip(log.loc[fired, "step"], log.loc[fired, "guard"])]


def training_data(dataset_name: str, dataset: dict, classes: list[str]) -> dict:
    """Patients and slices per split (and class) from the prepared manifest."""
    from .prepare import load_manifest

    manifest = load_manifest(paths.path(paths.SLICES, dataset=dataset_name))
    used = manifest[manifest["class"].isin(classes)]
    splits = {}
    for split, rows in used.groupby("split", sort=True):
        splits[split] = {"patients": int(rows["case"].nunique()), "slices": int(len(rows)),
                         "per_class": {c: int(n) for c, n in rows["class"].value_counts().sort_index().items()}}
    return {"dataset": dataset_name, "license": dataset.get("license"), "kind": dataset["kind"],
            "layout": dataset.get("layout"), "split_ratios": dataset.get("split"), "splits": splits,
            "split_by": "patient (case): no patient is in two splits"}


def metadata(name: str, params: dict, arch: dict, block: dict, metrics: dict, data: dict,
             turing: dict | None, model: dict) -> dict:
    exp = params["experiments"][name]
    dataset = params["datasets"][exp["dataset"]]
    organ, modality = organ_and_modality(dataset)
    package = package_name(name)
    return {
        "execution": {
            # package_link: the zip's name here; replace it with where you publish the zip (Zenodo, ...)
            "package_name": package, "package_link": Path(paths.EXPORT_ZIP.format(experiment=name)).name,
            "model_name": "generator",
            "extension": ".safetensors", "image_size": arch["image_size"],
            "dependencies": RUNTIME_DEPENDENCIES,
            "generate_method": {"name": "generate", "args": {
                "base": ["model_file", "num_samples", "output_path", "save_images"],
                "custom": custom_args(arch)}},
        },
        "selection": {
            "performance": performance(metrics, turing),
            "use_cases": ["research", "method development", "data augmentation experiments"],
            "organ": [organ], "modality": [modality], "vendors": [], "centres": [],
            "function": ["noise to image"] if not arch["paired"] else ["label map to image"],
            "condition": arch["classes"], "dataset": [exp["dataset"]], "augmentations": augmentations(model),
            "generates": arch["classes"], "height": arch["image_size"][0], "width": arch["image_size"][1],
            "depth": None, "type": arch["variant"], "license": data["license"],
            "privacy_preservation": None,
            "tags": ["medgan", arch["variant"], exp["dataset"], *arch["classes"]],
            "year": None,
        },
        "description": {
            "title": f"medgan {arch['variant']} generator of {', '.join(arch['classes'])} slices ({exp['dataset']})",
            "provided_date": None, "trained_date": None,
            "provided_after_epoch": None, "provided_after_step": model.get("step"),
            "version": __version__, "publication": None, "doi": [],
            "inputs": inputs(arch),
            "comment": "Exported by `medgan export`; every number with its interval, n and seed is in the "
                       "`medgan` block and MODEL_CARD.md. Not for diagnosis.",
        },
        "medgan": block,
    }


def custom_args(arch: dict) -> dict:
    """medigan's defaults. seed None: medigan calls generate once per batch with the same
    arguments, and a fixed seed would give every batch the same images."""
    custom = {"seed": None}
    if arch["conditional"]:
        custom["class"] = arch["classes"][0]
    if arch["paired"]:
        custom["mask_dir"] = None
    return custom


def inputs(arch: dict) -> list[str]:
    described = ["seed: int (same seed, same images; default none: fresh images each call)"]
    if arch["conditional"]:
        described.append(f"class: one of {arch['classes']}")
    if arch["paired"]:
        top = (arch["labels"] or {}).get("max_value")
        described.append(f"mask_dir: folder of PNG label maps {arch['image_size'][1]}x{arch['image_size'][0]} "
                         f"(values 0..{top}, or medgan's viewable 0..255 masks)")
    return described


def augmentations(model: dict) -> list[str]:
    train = model.get("train") or {}
    found = list(train.get("diffaugment") or [])
    if train.get("hflip"):
        found.append("horizontal flip")
    return found


def organ_and_modality(dataset: dict) -> tuple[str, str]:
    """Only what the dataset's layout says for sure; 'unknown' otherwise."""
    known = {"lits": ("liver", "CT"), "covid_ct": ("lung", "CT"), "brain_mri": ("brain", "MRI")}
    organ, modality = known.get(dataset.get("layout"), (None, None))
    return dataset.get("organ") or organ or "unknown", dataset.get("modality") or modality or "unknown"


def artifact(params: dict, name: str) -> dict:
    """The entry of experiment `name` under dvc.yaml's `artifacts:` (DVC's model registry)."""
    exp = params["experiments"][name]
    organ, modality = organ_and_modality(params["datasets"][exp["dataset"]])
    classes = config.classes_of(params, exp)
    return {"path": paths.EXPORT_ZIP.format(experiment=name), "type": "model",
            "desc": f"{exp['variant']} generator of {', '.join(classes)} slices ({exp['dataset']}), by medgan export",
            "labels": [modality, organ, exp["variant"]]}


# -- model card ---------------------------------------------------------------------------------

def model_card(context: dict) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("medgan", "templates"), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda x: "—" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)
    return env.get_template("model_card.md.j2").render(**context)


def card_rows(metrics: dict) -> list[dict]:
    rows = []
    for name in CARD_METRICS:
        runs = per_seed(metrics.get(name))
        if runs:
            values, entry = [r["value"] for r in runs], metrics[name]
            several = len(values) > 1
            rows.append({"name": name, "runs": runs, "spread": (min(values), max(values)) if several else None,
                         "median": entry["value"] if several else None,  # the aggregate's median over seeds
                         "median_ci": (entry["ci_low"], entry["ci_high"]) if several and "ci_low" in entry else None})
    return rows


def floor_rows(baseline: dict | None, classes: list[str]) -> list[dict]:
    """The real-vs-real floor of the metrics the card shows, per class the model makes."""
    if not baseline:
        return []
    rows = []
    per_class = baseline.get("classes") or {}
    for cls in (classes if len(classes) == 1 else ["all"]):  # the pool a multi-class model is evaluated on
        metrics = (per_class.get(cls) or {}).get("metrics") or {}
        for name in CARD_METRICS:
            runs = per_seed(metrics.get(name))
            if runs:
                rows.append({"class": cls, "name": name, **runs[0]})
    return rows


# -- the stage ----------------------------------------------------------------------------------

def export(params: dict, name: str, replicate: int = 0) -> Path:
    """Write results/export/<name>/ and results/export/<name>.zip; returns the folder."""
    from .modelio import load_generator

    exp = config.experiment(params, name)
    if exp["variant"] not in EXPORTABLE:
        raise ExportError(f"experiment '{name}' is a {exp['variant']} model; `medgan export` handles "
                          f"{', '.join(EXPORTABLE)} (a DDPM needs MONAI and its sampler, inpainting its painter)")
    if not 0 <= replicate < config.replicates_of(params, name):
        raise ExportError(f"experiment '{name}' has replicates 0..{config.replicates_of(params, name) - 1}; "
                          f"--replicate {replicate} is not one of them")
    model_path = model_file(name, replicate)
    G, model = load_generator(model_path)
    arch = architecture(model, exp, params["datasets"][exp["dataset"]], params["sample"])
    record, card = describe(params, name, replicate, arch, model, model_path)
    folder = paths.path(paths.EXPORT, experiment=name)
    with atomic_dir(folder) as tmp:
        write_weights(G.state_dict(), tmp / WEIGHTS)
        (tmp / ARCHITECTURE).write_text(json.dumps(arch, indent=2, sort_keys=True) + "\n")
        (tmp / METADATA).write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
        (tmp / MODEL_CARD).write_text(card)
        copy_code(tmp)
    write_zip(folder, paths.path(paths.EXPORT_ZIP, experiment=name), package_name(name))
    return folder


def describe(params: dict, name: str, replicate: int, arch: dict, model: dict, model_path: Path) -> tuple[dict, str]:
    """(metadata.json's record, MODEL_CARD.md's text) from the run's metrics, baseline, log and data."""
    exp = params["experiments"][name]
    metrics_path = metrics_file(name, replicate)
    metrics_json = read_json(metrics_path, f"run `medgan evaluate {name}` first")
    metrics = metrics_json.get("metrics", {})
    baseline_path = paths.path(paths.BASELINE, dataset=exp["dataset"])
    baseline = read_json(baseline_path, f"rerun `medgan baseline {exp['dataset']}`") if baseline_path.is_file() else None
    guard = guard_findings(training_log_file(name, replicate))
    turing = turing_result(name)
    block = medgan_block(metrics_json, metrics_path, baseline_summary(baseline, arch["classes"]), arch,
                         model.get("provenance") or {}, guard)
    block.update(replicate=replicate, turing_test=turing)
    data = training_data(exp["dataset"], params["datasets"][exp["dataset"]], arch["classes"])
    record = metadata(name, params, arch, block, metrics, data, turing, model)
    card = model_card({"name": name, "package": package_name(name), "arch": arch, "record": record, "data": data,
                       "rows": card_rows(metrics), "floor": floor_rows(baseline, arch["classes"]), "guard": guard,
                       "metrics": metrics, "turing": turing, "version": __version__,
                       "model_path": model_path.as_posix(), "metrics_path": metrics_path.as_posix()})
    return record, card


def baseline_summary(baseline: dict | None, classes: list[str]) -> dict | None:
    rows = floor_rows(baseline, classes)
    if not rows:
        return None
    out: dict = {}
    for row in rows:
        out.setdefault(row["class"], {})[row["name"]] = {k: row[k] for k in SEED_FIELDS}
    return out


def write_zip(folder: Path, out: Path, package: str) -> None:
    """The folder under `package/` in a zip with fixed member times (same bytes for the same export)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{package}/{path.relative_to(folder).as_posix()}", ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    with atomic_file(out) as tmp:
        tmp.write_bytes(buffer.getvalue())

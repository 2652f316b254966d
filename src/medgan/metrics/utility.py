"""Downstream utility: does the synthetic data help a classifier of the dataset's classes?

A small CNN (3 conv+BN+max-pool blocks, ~6k weights, CPU seconds on 64x64 images) is trained on
  real       the real training images of every class,
  synthetic  the generated images; for a class the experiment did not generate (an
             unconditional GAN generates one class) the real training images of that class
             stand in, so that a two-class classifier can still be trained — the result's
             `synthetic_classes` says which classes were synthetic,
  mixed      real training images plus all generated images,
and tested on the real held-out split of every class: accuracy, AUC (scikit-learn),
sensitivity and specificity for the positive class (the last of datasets.<name>.classes;
one-vs-rest macro averages when there are more than two classes), with 95% intervals over the
test set's patients (common.intervals; the classifiers are fixed, only the test set varies).
`utility_auc_gain` = mixed AUC - real AUC on the same test images, its interval paired (both
classifiers scored on each leave-one-patient-out set). The baseline row reports the
`real` regime only."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import recall_score, roc_auc_score

from .common import ImageSet, MetricSkipped, clusters_of, intervals, load_gray, number

REGIMES = ("real", "synthetic", "mixed")
STATS = ("accuracy", "auc", "sensitivity", "specificity")
NAMES = [f"utility_{r}_{s}" for r in REGIMES for s in STATS] + ["utility_auc_gain"]


def small_cnn(n_classes: int):
    import torch.nn as nn

    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(1, 8), *block(8, 16), *block(16, 32),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, n_classes))


def train_classifier(x: np.ndarray, y: np.ndarray, n_classes: int, epochs: int, seed: int,
                     batch_size: int = 32, lr: float = 3e-3):
    """Fit small_cnn on (N, H, W) [0, 1] images with class-balanced loss weights."""
    import torch

    torch.manual_seed(seed)
    # channels_last: oneDNN's pooling and convolutions in NHWC, ~1.5x the training speed here
    model = small_cnn(n_classes).to(memory_format=torch.channels_last)
    counts = np.bincount(y, minlength=n_classes).astype(np.float32)
    weights = torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0),
                           dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    xs, ys = torch.from_numpy(x[:, None]), torch.from_numpy(y.astype(np.int64))
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(xs)))
        for start in range(0, len(xs), batch_size):
            batch = order[start:start + batch_size]
            optimiser.zero_grad()
            loss_fn(model(xs[batch]), ys[batch]).backward()
            optimiser.step()
    return model.eval()


def predict_proba(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x[:, None])), 1).numpy()


def scores(y: np.ndarray, proba: np.ndarray, n_classes: int) -> list[float]:
    """[accuracy, auc, sensitivity, specificity]; NaN where undefined (one class in y)."""
    predicted = proba.argmax(1)
    accuracy = float(np.mean(predicted == y))
    if len(np.unique(y)) < n_classes:
        return [accuracy, np.nan, np.nan, np.nan]
    if n_classes == 2:
        auc = roc_auc_score(y, proba[:, 1])
        sensitivity = recall_score(y, predicted, pos_label=1, zero_division=0)
        specificity = recall_score(y, predicted, pos_label=0, zero_division=0)
    else:
        auc = roc_auc_score(y, proba, multi_class="ovr")
        sensitivity = recall_score(y, predicted, average="macro", zero_division=0)
        specificity = float(np.mean([np.mean(predicted[y != c] != c) for c in range(n_classes)]))
    return [accuracy, float(auc), float(sensitivity), float(specificity)]


def labelled(manifest, split: str, classes: list[str]):
    rows = manifest[(manifest["split"] == split) & manifest["class"].isin(classes)]
    return list(rows["file"]), np.array([classes.index(c) for c in rows["class"]])


def training_sets(inp, classes: list[str]):
    real_files, real_y = labelled(inp.manifest, "train", classes)
    samples = inp.samples if inp.samples is not None else inp.manifest.iloc[:0].assign(kind=[])
    fake_rows = samples[(samples["kind"] == "fake") & samples["class"].isin(classes)]
    fake_files, fake_y = list(fake_rows["file"]), np.array([classes.index(c) for c in fake_rows["class"]])
    synthetic_classes = sorted(set(fake_rows["class"]), key=classes.index)
    stand_in = [i for i, c in enumerate(real_files) if classes[real_y[i]] not in synthetic_classes]
    synthetic = ([fake_files[i] for i in range(len(fake_files))] + [real_files[i] for i in stand_in],
                 np.concatenate([fake_y, real_y[stand_in]]).astype(int))
    return {"real": (real_files, real_y), "synthetic": synthetic,
            "mixed": (real_files + fake_files, np.concatenate([real_y, fake_y]).astype(int))}, synthetic_classes


def compute(inp) -> dict:
    classes = list(inp.dataset.get("classes", []))
    if len(classes) < 2:
        raise MetricSkipped("needs a dataset with at least 2 classes")
    test_files, test_y = labelled(inp.manifest, inp.settings["real_split"], classes)
    if len(np.unique(test_y)) < len(classes):
        raise MetricSkipped(f"the real '{inp.settings['real_split']}' split lacks a class of {classes}")
    test_x = load_gray(test_files, inp.image_size)
    test_clusters = clusters_of(inp, ImageSet(test_files))
    sets, synthetic_classes = training_sets(inp, classes)
    n_generated = int((inp.samples["kind"] == "fake").sum()) if inp.samples is not None else 0
    out, probas = {}, {}
    for regime in REGIMES:
        names = [f"utility_{regime}_{s}" for s in STATS]
        if inp.is_baseline and regime != "real":
            out.update({n: {"skipped": "not applicable to the real-vs-real baseline (no synthetic images)",
                            "n_real": len(test_y), "n_fake": 0, "seed": inp.seed} for n in names})
            continue
        files, y = sets[regime]
        model = train_classifier(load_gray(files, inp.image_size), y, len(classes),
                                 inp.settings["utility_epochs"], inp.seed)
        proba = probas[regime] = predict_proba(model, test_x)
        values = scores(test_y, proba, len(classes))
        cis = intervals(lambda i: scores(test_y[i], proba[i], len(classes)), [test_clusters], names,
                        inp.settings, inp.seed) or [None] * len(STATS)
        n_fake = 0 if regime == "real" else n_generated
        for name, value, ci in zip(names, values, cis):
            if not np.isfinite(value):
                out[name] = {"skipped": "undefined: the test split lacks a class", "n_real": len(test_y),
                             "n_fake": n_fake, "seed": inp.seed}
                continue
            out[name] = number(value, inp, ci, len(test_y), n_fake, n_train=len(y), positive=classes[-1],
                               synthetic_classes=",".join(synthetic_classes) or "none")
    out["utility_auc_gain"] = auc_gain(inp, test_y, probas, len(classes), n_generated, test_clusters)
    return out


def auc_gain(inp, test_y: np.ndarray, probas: dict, n_classes: int, n_generated: int, clusters) -> dict:
    """Mixed minus real AUC on the same test images; each leave-out drops a patient from both."""
    if "mixed" not in probas:
        return {"skipped": "not applicable to the real-vs-real baseline (no synthetic images)",
                "n_real": len(test_y), "n_fake": 0, "seed": inp.seed}

    def gain(i):
        return [scores(test_y[i], probas["mixed"][i], n_classes)[1] - scores(test_y[i], probas["real"][i], n_classes)[1]]

    value = gain(np.arange(len(test_y)))[0]
    if not np.isfinite(value):
        return {"skipped": "undefined: the test split lacks a class", "n_real": len(test_y),
                "n_fake": n_generated, "seed": inp.seed}
    cis = intervals(gain, [clusters], ["utility_auc_gain"], inp.settings, inp.seed)
    return number(value, inp, cis[0] if cis else None, len(test_y), n_generated, of="mixed auc - real auc")

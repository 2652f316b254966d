"""medgan: public medical imaging sets -> synthetic images with GANs -> honest quality tables."""

__version__ = "0.1.0"


def generate(model, n: int, seed: int = 0, out=None, cls=None, mask_dir=None):
    """n images (uint8 array, N x H x W) from an exported generator (a `medgan export` folder or
    zip), without params.yaml; the same seed gives the same images. See medgan.exported.generate."""
    from .exported import generate as _generate

    return _generate(model, n, seed=seed, out=out, cls=cls, mask_dir=mask_dir)

"""medgan: public medical imaging sets -> synthetic images with GANs -> honest quality tables."""

__version__ = "0.1.0"

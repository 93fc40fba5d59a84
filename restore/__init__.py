"""restore: repair and restyle images with conditional GANs."""

from restore._version import __version__

__all__ = ["__version__"]

"""lyra: Lyra-style generative 3D/4D scene reconstruction that runs anywhere (CPU included)."""

__version__ = "0.1.0"

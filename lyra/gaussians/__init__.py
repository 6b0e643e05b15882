"""Gaussians: the Gaussian set type, its operations and its file formats."""

from lyra.gaussians.gaussians import SH_C0, GaussianError, Gaussians, sh_degree_of

__all__ = ["SH_C0", "GaussianError", "Gaussians", "sh_degree_of"]

"""NVIDIA's Cosmos CV8x8x8 tokenizer behind the :class:`VideoTokenizer` protocol, from local files only.

Two forms of the same autoencoder are accepted (nothing is ever downloaded):

* TorchScript (what GEN3C / Lyra use): a folder with ``encoder.jit``, ``decoder.jit`` and
  ``mean_std.pt`` from the Hugging Face repo ``nvidia/Cosmos-Tokenize1-CV8x8x8-720p``;
* diffusers ``AutoencoderKLCosmos``: a folder with ``config.json`` + weights (or a pipeline folder
  with a ``vae/`` subfolder), e.g. the ``vae`` subfolder of ``nvidia/Cosmos-1.0-Tokenizer-CV8x8x8``
  (sdg.md §7); its ``latents_mean`` / ``latents_std`` config entries are the statistics.

Both take video ``[B, 3, T, H, W]`` in [-1, 1] with ``T = 1 + 8k`` and H, W multiples of 8 and give
raw latents ``[B, 16, 1 + (T - 1)/8, H/8, W/8]``. Statistics are 256 values viewed as
``[16 channels, 16 latent frames]`` (first ``T_l`` columns used).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from lyra.errors import reading
from lyra.tokenizer.base import TokenizerError, VideoTokenizer
from lyra.utils.inputs import load_tensors

JIT_REPO = "nvidia/Cosmos-Tokenize1-CV8x8x8-720p"
DIFFUSERS_REPO = "nvidia/Cosmos-1.0-Tokenizer-CV8x8x8"
JIT_FILES = ("encoder.jit", "decoder.jit", "mean_std.pt")


def _download_hint(folder: Path, repo: str, files: str) -> str:
    return (f"download {files} from the Hugging Face repo {repo} into {folder}, e.g. "
            f"`huggingface-cli download {repo} --local-dir {folder}` on a machine with network access "
            "(lyra never downloads)")


def read_mean_std(path: str | Path, channels: int = 16) -> tuple[Tensor, Tensor]:
    """Read Cosmos ``mean_std.pt`` (a pair of tensors; also a dict ``{mean, std}`` or a ``[2, ...]`` tensor).

    Returns ``(mean, std)`` as float32 ``[C, T_stats]`` (values viewed as ``(C, -1)``). Loaded with
    ``weights_only=True``: nothing but tensors and containers is unpickled.
    """
    obj = load_tensors(path, "Cosmos mean_std.pt", TokenizerError)
    if isinstance(obj, dict):
        keys = {str(k).lower(): v for k, v in obj.items()}
        mean, std = keys.get("mean", keys.get("latents_mean")), keys.get("std", keys.get("latents_std"))
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        mean, std = obj
    elif isinstance(obj, Tensor) and obj.shape[0] == 2:
        mean, std = obj[0], obj[1]
    else:
        raise TokenizerError(f"{path}: expected (mean, std) tensors, got {type(obj).__name__}")
    if mean is None or std is None:
        raise TokenizerError(f"{path}: no mean/std entries")
    mean, std = torch.as_tensor(mean).float(), torch.as_tensor(std).float()
    if mean.numel() != std.numel() or mean.numel() % channels:
        raise TokenizerError(f"{path}: mean/std sizes {mean.numel()}/{std.numel()} are not {channels} x T")
    return mean.reshape(channels, -1), std.reshape(channels, -1)


class _StatsMixin:
    _mean: Tensor | None
    _std: Tensor | None
    _stats_hint: str

    @property
    def latents_mean(self) -> Tensor:
        if self._mean is None:
            raise TokenizerError(f"latent statistics are not loaded: {self._stats_hint}")
        return self._mean

    @property
    def latents_std(self) -> Tensor:
        if self._std is None:
            raise TokenizerError(f"latent statistics are not loaded: {self._stats_hint}")
        return self._std


class CosmosJITTokenizer(_StatsMixin, VideoTokenizer):
    """Cosmos-Tokenize1-CV8x8x8 as TorchScript ``encoder.jit`` / ``decoder.jit`` (+ ``mean_std.pt``).

    Args:
        encoder, decoder: TorchScript (or plain) modules: ``[B, 3, T, H, W] -> [B, 16, T_l, h, w]``
            (a tuple/list output is reduced to its first element) and back.
        mean, std: ``[16, T_stats]`` statistics or None.
        device, dtype: where and in which precision the modules run (the release runs bf16 on CUDA).
    """

    spatial_compression = 8
    temporal_compression = 8
    latent_channels = 16
    size_multiple = 8

    def __init__(self, encoder: torch.nn.Module, decoder: torch.nn.Module, mean: Tensor | None = None,
                 std: Tensor | None = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, stats_hint: str = "") -> None:
        self.device, self.dtype = torch.device(device), dtype
        self.encoder = encoder.to(device=self.device, dtype=dtype).eval()
        self.decoder = decoder.to(device=self.device, dtype=dtype).eval()
        self._mean, self._std = mean, std
        self._stats_hint = stats_hint or f"download mean_std.pt from {JIT_REPO}"

    @classmethod
    def from_folder(cls, folder: str | Path, device: torch.device | str = "cpu",
                    dtype: torch.dtype | None = None, require_stats: bool = False) -> CosmosJITTokenizer:
        """Load ``encoder.jit`` and ``decoder.jit`` (and ``mean_std.pt`` when present) from ``folder``.

        ``dtype`` defaults to bfloat16 on CUDA and float32 on CPU.
        """
        d = Path(folder)
        if not d.is_dir():
            raise TokenizerError(f"Cosmos tokenizer folder {d} does not exist: "
                                 + _download_hint(d, JIT_REPO, ", ".join(JIT_FILES)))
        missing = [f for f in JIT_FILES[:2] if not (d / f).is_file()]
        if require_stats and not (d / JIT_FILES[2]).is_file():
            missing.append(JIT_FILES[2])
        if missing:
            raise TokenizerError(f"{d} lacks {', '.join(missing)}: " + _download_hint(d, JIT_REPO, ", ".join(missing)))
        device = torch.device(device)
        if dtype is None:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        with reading(d / "encoder.jit", "not a loadable TorchScript file", TokenizerError):
            enc = torch.jit.load(str(d / "encoder.jit"), map_location=device)
        with reading(d / "decoder.jit", "not a loadable TorchScript file", TokenizerError):
            dec = torch.jit.load(str(d / "decoder.jit"), map_location=device)
        mean = std = None
        if (d / "mean_std.pt").is_file():
            mean, std = read_mean_std(d / "mean_std.pt")
        hint = f"{d / 'mean_std.pt'} is missing: " + _download_hint(d, JIT_REPO, "mean_std.pt")
        return cls(enc, dec, mean, std, device=device, dtype=dtype, stats_hint=hint)

    @staticmethod
    def _first(out: Tensor | tuple | list) -> Tensor:
        return out[0] if isinstance(out, (tuple, list)) else out

    @torch.no_grad()
    def _encode(self, video: Tensor) -> Tensor:
        z = self._first(self.encoder(video.to(device=self.device, dtype=self.dtype)))
        return z.float()

    @torch.no_grad()
    def _decode(self, latents: Tensor) -> Tensor:
        return self._first(self.decoder(latents.to(device=self.device, dtype=self.dtype))).float()


class DiffusersCosmosTokenizer(_StatsMixin, VideoTokenizer):
    """diffusers ``AutoencoderKLCosmos`` behind the protocol (posterior mode = the deterministic latent)."""

    spatial_compression = 8
    temporal_compression = 8
    latent_channels = 16
    size_multiple = 8

    def __init__(self, vae: torch.nn.Module, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        cfg = vae.config
        self.vae = vae.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = torch.device(device), dtype
        self.latent_channels = int(cfg.latent_channels)
        self.spatial_compression = int(cfg.spatial_compression_ratio)
        self.temporal_compression = int(cfg.temporal_compression_ratio)
        self.size_multiple = self.spatial_compression
        self._mean = self._std = None
        if cfg.latents_mean is not None and cfg.latents_std is not None:
            self._mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).reshape(self.latent_channels, -1)
            self._std = torch.tensor(cfg.latents_std, dtype=torch.float32).reshape(self.latent_channels, -1)
        self._stats_hint = "the AutoencoderKLCosmos config has no latents_mean / latents_std"

    @classmethod
    def from_folder(cls, folder: str | Path, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> DiffusersCosmosTokenizer:
        """Load from a local diffusers folder (``config.json`` + weights, or its ``vae/`` subfolder)."""
        d = Path(folder)
        if not (d / "config.json").is_file() and (d / "vae" / "config.json").is_file():
            d = d / "vae"
        if not (d / "config.json").is_file():
            raise TokenizerError(f"{d} has no config.json of AutoencoderKLCosmos: "
                                 + _download_hint(d, DIFFUSERS_REPO, "the vae/ folder (config.json + weights)"))
        try:
            from diffusers import AutoencoderKLCosmos
        except ImportError as e:
            raise ImportError("the diffusers form of the Cosmos tokenizer needs diffusers: "
                              "pip install 'diffusers>=0.34' (or use the TorchScript folder)") from e
        try:
            vae = AutoencoderKLCosmos.from_pretrained(str(d), local_files_only=True, torch_dtype=dtype)
        except OSError as e:
            raise TokenizerError(f"cannot load AutoencoderKLCosmos from {d}: {e}") from e
        return cls(vae, device=device, dtype=dtype)

    @torch.no_grad()
    def _encode(self, video: Tensor) -> Tensor:
        out = self.vae.encode(video.to(device=self.device, dtype=self.dtype), return_dict=False)[0]
        return out.mode().float()

    @torch.no_grad()
    def _decode(self, latents: Tensor) -> Tensor:
        return self.vae.decode(latents.to(device=self.device, dtype=self.dtype), return_dict=False)[0].float()

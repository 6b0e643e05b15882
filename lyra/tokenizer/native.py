"""The native pocket tokenizer: a small causal video VAE with the Cosmos-CV8x8x8 contract.

8x spatial, causal 8x temporal (first frame alone, then groups of 8), 16 latent channels.

Architecture (about 1-2 M parameters; built for 2 CPU cores):
  * space-to-depth by 4 at the input, depth-to-space by 4 at the output (as Cosmos' patchify);
  * (2+1)D residual blocks: a 3x3 spatial conv then a causal temporal conv (kernel 3, the first
    frame replicated in front), channel RMS norm (per pixel, so nothing mixes across time);
  * one strided 2x spatial step; temporal 8x by "replicate frame 0 seven times, fold each group
    of 8 frames into channels, 1x1 conv" (and the mirror in the decoder, dropping the 7 padding
    frames). Every operation looks only at the current and earlier frames, so latent ``j``
    depends on pixel frames ``<= 8 j`` and decoded frame ``i`` on latents ``<= ceil(i / 8)``.

Tensors inside the network are kept frame-folded ``[B*T, C, H, W]`` so that spatial work is
plain ``conv2d``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import reading
from lyra.tokenizer.base import TokenizerError, VideoTokenizer
from lyra.tokenizer.pca import BlockPCA
from lyra.utils.inputs import load_tensors, read_json
from lyra.utils.shipped import shipped_dir
from lyra.utils.typed import from_plain

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class CausalVAEConfig:
    """Every knob of the native causal VAE; saved as ``config.json`` beside the weights."""

    in_channels: int = 3
    latent_channels: int = 16
    patch_size: int = 4  # space-to-depth factor at the input; spatial compression = 2 * patch_size
    channels: tuple[int, int] = (48, 96)  # widths at H/patch and H/(2 patch)
    enc_blocks: tuple[int, int, int] = (1, 1, 1)  # res blocks at H/4, H/8, latent rate
    dec_blocks: tuple[int, int, int] = (1, 2, 2)  # res blocks at latent rate, H/8, H/4
    temporal_compression: int = 8
    temporal_kernel: int = 3
    stats_frames: int = 16  # latent frames covered by latents_mean / latents_std
    logvar_clamp: tuple[float, float] = (-20.0, 4.0)
    dec_channels: tuple[int, int] | None = None  # decoder widths at H/patch and H/(2 patch) (None: channels)
    pca_shortcut: bool = False  # v2: a whitened block-PCA codec around the network (lyra.tokenizer.pca)

    @property
    def spatial_compression(self) -> int:
        return 2 * self.patch_size

    def to_dict(self) -> dict:
        return {"_class_name": "CausalVideoVAE", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict, where: str = "CausalVAEConfig") -> CausalVAEConfig:
        """Strict: unknown keys (other than ``_``-prefixed metadata) and wrong types raise TokenizerError."""
        return from_plain(cls, {k: v for k, v in d.items() if not str(k).startswith("_")}, where, TokenizerError)


class RMSNorm(nn.Module):
    """Per-pixel RMS norm over channels of ``[N, C, H, W]`` (never mixes frames)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels, 1, 1))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + self.eps) * self.weight


class CausalTemporalConv(nn.Module):
    """Causal conv along time on frame-folded ``[B*T, C, H, W]`` (kernel k, frame 0 replicated)."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.proj = nn.Conv2d(cin * kernel, cout, 1)

    def forward(self, x: Tensor, T: int) -> Tensor:
        N, C, H, W = x.shape
        v = x.view(N // T, T, C, H, W)
        k = self.kernel
        if k > 1:
            v = torch.cat([v[:, :1].expand(-1, k - 1, -1, -1, -1), v], 1)
        taps = torch.cat([v[:, i : i + T] for i in range(k)], 2)  # [B, T, k*C, H, W], oldest tap first
        return self.proj(taps.reshape(N, k * C, H, W))


class ResBlock(nn.Module):
    """(2+1)D residual block: norm-SiLU-conv3x3, norm-SiLU-causal temporal conv, skip."""

    def __init__(self, ch: int, temporal_kernel: int) -> None:
        super().__init__()
        self.norm1 = RMSNorm(ch)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.norm2 = RMSNorm(ch)
        self.conv2 = CausalTemporalConv(ch, ch, temporal_kernel)
        nn.init.zeros_(self.conv2.proj.weight)
        nn.init.zeros_(self.conv2.proj.bias)

    def forward(self, x: Tensor, T: int) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)), T)


class _Stage(nn.ModuleList):
    def forward(self, x: Tensor, T: int) -> Tensor:  # type: ignore[override]
        for blk in self:
            x = blk(x, T)
        return x


def _stage(n: int, ch: int, k: int) -> _Stage:
    return _Stage([ResBlock(ch, k) for _ in range(n)])


def fold_time(x: Tensor) -> Tensor:
    """``[B, C, T, H, W]`` -> ``[B*T, C, H, W]``."""
    B, C, T, H, W = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)


def unfold_time(x: Tensor, T: int) -> Tensor:
    """``[B*T, C, H, W]`` -> ``[B, C, T, H, W]``."""
    N, C, H, W = x.shape
    return x.view(N // T, T, C, H, W).permute(0, 2, 1, 3, 4)


class CausalEncoder(nn.Module):
    """Video ``[B, 3, T, H, W]`` -> posterior mean and log-variance ``[B, C, T_l, H/8, W/8]`` each."""

    def __init__(self, cfg: CausalVAEConfig) -> None:
        super().__init__()
        c0, c1 = cfg.channels
        p, k, kt = cfg.patch_size, cfg.temporal_kernel, cfg.temporal_compression
        self.cfg = cfg
        self.conv_in = nn.Conv2d(cfg.in_channels * p * p, c0, 3, padding=1)
        self.stage0 = _stage(cfg.enc_blocks[0], c0, k)
        self.down = nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.stage1 = _stage(cfg.enc_blocks[1], c1, k)
        self.time_down = nn.Conv2d(c1 * kt, c1, 1)
        self.stage2 = _stage(cfg.enc_blocks[2], c1, k)
        self.norm_out = RMSNorm(c1)
        self.conv_out = nn.Conv2d(c1, 2 * cfg.latent_channels, 3, padding=1)
        with torch.no_grad():  # start with a nearly deterministic posterior (std ~ 0.05): fast early training
            self.conv_out.weight[cfg.latent_channels :] *= 0.1
            self.conv_out.bias[cfg.latent_channels :].fill_(-6.0)

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor]:
        B, _, T, _, _ = video.shape
        kt = self.cfg.temporal_compression
        x = F.pixel_unshuffle(fold_time(video), self.cfg.patch_size)
        x = self.stage0(self.conv_in(x), T)
        x = self.stage1(self.down(x), T)
        _, C, h, w = x.shape
        v = x.view(B, T, C, h, w)
        v = torch.cat([v[:, :1].expand(-1, kt - 1, -1, -1, -1), v], 1)  # [B, T + kt - 1, C, h, w]
        T_l = (T + kt - 1) // kt
        v = v.view(B, T_l, kt * C, h, w).reshape(B * T_l, kt * C, h, w)  # group g = frames kt(g-1)+1..kt g
        x = self.stage2(self.time_down(v), T_l)
        moments = unfold_time(self.conv_out(F.silu(self.norm_out(x))), T_l)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(*self.cfg.logvar_clamp)


class CausalDecoder(nn.Module):
    """Latents ``[B, C, T_l, h, w]`` -> video ``[B, 3, 1 + 8 (T_l - 1), 8 h, 8 w]``."""

    def __init__(self, cfg: CausalVAEConfig) -> None:
        super().__init__()
        c0, c1 = cfg.dec_channels or cfg.channels
        p, k, kt = cfg.patch_size, cfg.temporal_kernel, cfg.temporal_compression
        self.cfg = cfg
        self.conv_in = nn.Conv2d(cfg.latent_channels, c1, 3, padding=1)
        self.stage0 = _stage(cfg.dec_blocks[0], c1, k)
        self.time_up = nn.Conv2d(c1, c1 * kt, 1)
        self.stage1 = _stage(cfg.dec_blocks[1], c1, k)
        self.up = nn.Conv2d(c1, c0 * 4, 3, padding=1)
        self.stage2 = _stage(cfg.dec_blocks[2], c0, k)
        self.norm_out = RMSNorm(c0)
        self.conv_out = nn.Conv2d(c0, cfg.in_channels * p * p, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        B, _, T_l, h, w = z.shape
        kt = self.cfg.temporal_compression
        x = self.stage0(self.conv_in(fold_time(z)), T_l)
        C = x.shape[1]
        x = self.time_up(x).view(B, T_l * kt, C, h, w)[:, kt - 1 :]  # drop the frame-0 padding
        T = x.shape[1]
        x = self.stage1(x.reshape(B * T, C, h, w), T)
        x = F.pixel_shuffle(self.up(x), 2)
        x = self.stage2(x, T)
        x = F.pixel_shuffle(self.conv_out(F.silu(self.norm_out(x))), self.cfg.patch_size)
        return unfold_time(x, T)


class CausalVideoVAE(nn.Module, VideoTokenizer):
    """The native causal video VAE behind the :class:`VideoTokenizer` protocol.

    ``encode`` returns the posterior mean (deterministic); :meth:`forward` samples for training.
    ``latents_mean`` / ``latents_std`` are buffers ``[C, stats_frames]`` saved with the weights.
    """

    def __init__(self, config: CausalVAEConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or CausalVAEConfig()
        self.spatial_compression = cfg.spatial_compression
        self.temporal_compression = cfg.temporal_compression
        self.latent_channels = cfg.latent_channels
        self.size_multiple = cfg.spatial_compression
        self.encoder = CausalEncoder(cfg)
        self.decoder = CausalDecoder(cfg)
        self.pca: BlockPCA | None = None
        if cfg.pca_shortcut:  # the network starts as the identity residual around the linear codec
            self.pca = BlockPCA(cfg.in_channels, cfg.latent_channels, cfg.spatial_compression,
                                cfg.temporal_compression)
            with torch.no_grad():
                self.encoder.conv_out.weight[: cfg.latent_channels].zero_()
                self.encoder.conv_out.bias[: cfg.latent_channels].zero_()
                self.decoder.conv_out.weight.zero_()
                self.decoder.conv_out.bias.zero_()
        self.register_buffer("stats_mean", torch.zeros(cfg.latent_channels, cfg.stats_frames))
        self.register_buffer("stats_std", torch.ones(cfg.latent_channels, cfg.stats_frames))

    @property
    def latents_mean(self) -> Tensor:
        return self.stats_mean

    @property
    def latents_std(self) -> Tensor:
        return self.stats_std

    def set_latent_stats(self, mean: Tensor, std: Tensor) -> None:
        """Store ``[C, stats_frames]`` statistics (e.g. from :func:`lyra.tokenizer.train.latent_statistics`)."""
        shape = tuple(self.stats_mean.shape)
        if tuple(mean.shape) != shape or tuple(std.shape) != shape:
            raise TokenizerError(f"latent statistics must be {list(shape)}, got {list(mean.shape)}, {list(std.shape)}")
        self.stats_mean.copy_(mean)
        self.stats_std.copy_(std.clamp_min(1e-6))

    def _param_dtype(self) -> torch.dtype:
        return self.encoder.conv_in.weight.dtype

    def posterior(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance ``[B, C, T_l, h, w]`` of a video ``[B, 3, T, H, W]`` in [-1, 1]."""
        video = video.to(self._param_dtype())
        mean, logvar = self.encoder(video)
        if self.pca is not None:
            mean = mean + self.pca.encode(video)
        return mean, logvar

    def _encode(self, video: Tensor) -> Tensor:
        return self.posterior(video)[0]

    def _decode(self, latents: Tensor) -> Tensor:
        latents = latents.to(self._param_dtype())
        out = self.decoder(latents)
        return out if self.pca is None else out + self.pca.decode(latents)

    def forward(self, video: Tensor, sample: bool = True,
                perturb: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Training pass: ``(reconstruction [B,3,T,H,W], mean, logvar [B,C,T_l,h,w])``; ``perturb`` maps the latents
        before they are decoded (training the decoder on latents no encoder made)."""
        mean, logvar = self.posterior(video)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if sample else mean
        return self._decode(z if perturb is None else perturb(z)), mean, logvar

    # ------------------------------------------------------------------ persistence (diffusers style)
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (float32) into ``directory`` atomically."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().float().contiguous().cpu() for k, v in self.state_dict().items()}
        tmp_w, tmp_c = d / (WEIGHTS_NAME + ".tmp"), d / (CONFIG_NAME + ".tmp")
        save_file(state, str(tmp_w), metadata={"format": "pt", "lyra_class": "CausalVideoVAE"})
        tmp_c.write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        for tmp in (tmp_w, tmp_c):  # safetensors may create 0600 files; use the usual umask-based mode
            os.chmod(tmp, 0o666 & ~umask)
        tmp_w.replace(d / WEIGHTS_NAME)
        tmp_c.replace(d / CONFIG_NAME)
        return d

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> CausalVideoVAE:
        """Rebuild from ``config.json`` + ``model.safetensors`` (strict key match), in eval mode."""
        d = Path(directory)
        cfg_path, w_path = d / CONFIG_NAME, d / WEIGHTS_NAME
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise TokenizerError(f"native tokenizer folder {d} lacks {p.name} (expected {CONFIG_NAME} + "
                                     f"{WEIGHTS_NAME}, as written by save_pretrained)")
        cfg = CausalVAEConfig.from_dict(read_json(cfg_path, "tokenizer config.json", TokenizerError), str(cfg_path))
        with reading(cfg_path, "does not describe a buildable tokenizer", TokenizerError):
            model = cls(cfg)
        state = load_tensors(w_path, "safetensors weights file", TokenizerError)
        with reading(w_path, "weights do not fit the config", TokenizerError):
            missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise TokenizerError(f"{w_path}: weights do not match config (missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]})")
        return model.to(device=device, dtype=dtype).eval()


def shipped_tokenizer_dir(name: str = "shipped") -> Path:
    """Folder of a shipped native tokenizer: ``pocket-v1`` / ``pocket`` (``lyra/assets/tokenizer``) or ``pocket-v2``
    (``lyra/assets/tokenizer-v2``); ``shipped`` is the default version's (:mod:`lyra.utils.shipped`)."""
    try:
        return shipped_dir("tokenizer", name)
    except ValueError as exc:
        raise TokenizerError(str(exc)) from None


def load_shipped(device: torch.device | str = "cpu", name: str = "shipped") -> CausalVideoVAE:
    """A shipped native tokenizer (raises with the retraining command if the weights are absent)."""
    d = shipped_tokenizer_dir(name)
    if not (d / WEIGHTS_NAME).is_file():
        raise TokenizerError(f"shipped tokenizer weights not found in {d}; retrain them as its model card "
                             f"({d / 'README.md'}) says")
    return CausalVideoVAE.from_pretrained(d, device=device)

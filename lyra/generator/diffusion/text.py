"""Text conditioning from precomputed embeddings: the (empty) prompt and the official negative prompt.

GEN3C always samples with the prompt ``""`` and the default negative prompt of its inference scripts, encoded by
T5-11B's encoder (512 tokens × 1024, positions past each text's length set to zero; gen3c-official-inference.md §5).
Two fixed tensors therefore reproduce its text conditioning, and no T5 is needed when sampling:
:func:`compute_prompt_embeddings` makes them once from a local T5 folder, :meth:`PromptEmbeddings.save` writes them
(``text_embeddings.safetensors``, keys ``prompt`` and ``negative_prompt``) and :meth:`PromptEmbeddings.load` reads
them. From the command line::

    python -m lyra.generator.diffusion.text T5_DIR OUT.safetensors --negative-prompt-file NEG.txt [--device cuda]

where ``T5_DIR`` holds ``google-t5/t5-11b`` (``hf download google-t5/t5-11b --local-dir T5_DIR``; the encoder runs in
float32 as officially, ≈ 19 GB).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lyra.generator.diffusion.config import DiffusionError, Gen3CNetConfig
from lyra.utils.files import atomic_write
from lyra.utils.inputs import load_tensors, require_dir

EMBEDDINGS_FILE = "text_embeddings.safetensors"
MAX_TOKENS = 512
# GEN3C's unconditional branch reads the default --negative_prompt of its inference scripts. lyra does not ship
# NVIDIA's text: pass it from your checkout of nv-tlabs/GEN3C (its single-image inference script's default) with
# --negative-prompt-file; the embeddings are then exactly the official ones.


@dataclass
class PromptEmbeddings:
    """The two text embeddings of the guidance branches.

    Attributes:
        prompt: [L, D] the conditional branch's text (the empty prompt officially).
        negative_prompt: [L, D] the unconditional branch's text.
    """

    prompt: Tensor  # [L, D]
    negative_prompt: Tensor  # [L, D]

    def __post_init__(self) -> None:
        for name in ("prompt", "negative_prompt"):
            e = getattr(self, name)
            if not isinstance(e, Tensor) or e.ndim != 2 or not e.is_floating_point():
                shape = list(e.shape) if isinstance(e, Tensor) else type(e).__name__
                raise DiffusionError(f"text embedding {name!r} must be a float [L, D] tensor, got {shape}")
        if self.prompt.shape[1] != self.negative_prompt.shape[1]:
            raise DiffusionError(f"text embeddings differ in width: {list(self.prompt.shape)} vs "
                                 f"{list(self.negative_prompt.shape)}")

    def batched(self) -> tuple[Tensor, Tensor]:
        """(prompt, negative_prompt), each [1, L, D] float32."""
        return self.prompt[None].float(), self.negative_prompt[None].float()

    def check(self, config: Gen3CNetConfig) -> PromptEmbeddings:
        """Raise DiffusionError unless the width is the network's text width."""
        if self.prompt.shape[1] != config.text_dim:
            raise DiffusionError(f"text embeddings are {self.prompt.shape[1]} wide; the network reads "
                                 f"{config.text_dim}")
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write a safetensors file (float32, keys ``prompt`` and ``negative_prompt``)."""
        from safetensors.torch import save_file

        state = {"prompt": self.prompt.detach().float().cpu().contiguous(),
                 "negative_prompt": self.negative_prompt.detach().float().cpu().contiguous()}
        atomic_write(path, lambda p: save_file(state, p))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PromptEmbeddings:
        """Read :meth:`save`'s file (or the folder holding ``text_embeddings.safetensors``)."""
        p = Path(path)
        if p.is_dir():
            p = p / EMBEDDINGS_FILE
        if not p.exists():
            raise DiffusionError(p, "text embeddings not found; compute them once from a local T5-11B with "
                                    "`python -m lyra.generator.diffusion.text T5_DIR OUT.safetensors`")
        state = load_tensors(p, "text embeddings file", DiffusionError)
        missing = [k for k in ("prompt", "negative_prompt") if k not in state]
        if missing:
            raise DiffusionError(p, f"missing {', '.join(missing)} (keys: {', '.join(sorted(state))})")
        try:
            return cls(state["prompt"], state["negative_prompt"])
        except DiffusionError as exc:
            raise DiffusionError(p, str(exc)) from exc

    @classmethod
    def random(cls, config: Gen3CNetConfig, seed: int = 0) -> PromptEmbeddings:
        """Random embeddings of the network's shape [text_tokens, text_dim] (tests, untrained networks)."""
        g = torch.Generator().manual_seed(seed)
        shape = (config.text_tokens, config.text_dim)
        return cls(torch.randn(shape, generator=g), torch.randn(shape, generator=g))


@torch.no_grad()
def encode_prompts(t5_dir: str | os.PathLike, prompts: Sequence[str], *, max_length: int = MAX_TOKENS,
                   device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """T5 encoder states of ``prompts``: [len(prompts), max_length, D] float32, zero past each text's length.

    Each text is tokenised with padding to ``max_length`` (longer ones truncated), encoded with its attention
    mask, and the states at padding positions are set to zero, as GEN3C's text encoder does.
    """
    try:
        from transformers import AutoTokenizer, T5EncoderModel
    except ImportError as exc:
        raise DiffusionError("computing text embeddings needs transformers: pip install -e '.[hf]'") from exc
    folder = require_dir(t5_dir, "T5 folder", DiffusionError)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    encoder = T5EncoderModel.from_pretrained(folder, local_files_only=True, torch_dtype=dtype).to(device).eval()
    batch = tokenizer(list(prompts), return_tensors="pt", padding="max_length", truncation=True,
                      max_length=max_length)
    ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
    states = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    return (states * mask[..., None].to(states.dtype)).float().cpu()


def compute_prompt_embeddings(t5_dir: str | os.PathLike, prompt: str, negative_prompt: str,
                              **options: object) -> PromptEmbeddings:
    """Text conditioning from a local T5 folder: GEN3C's is the empty prompt and its default negative prompt."""
    states = encode_prompts(t5_dir, [prompt, negative_prompt], **options)  # type: ignore[arg-type]
    return PromptEmbeddings(states[0], states[1])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lyra.generator.diffusion.text",
                                 description="precompute GEN3C's text embeddings (empty prompt, official negative "
                                             "prompt) from a local T5 folder")
    ap.add_argument("t5_dir", help="folder with the T5 encoder and tokenizer (google-t5/t5-11b officially)")
    ap.add_argument("out", help=f"output safetensors file (e.g. WEIGHTS_DIR/{EMBEDDINGS_FILE})")
    ap.add_argument("--prompt", default="", help="the conditional prompt (default: empty, as GEN3C)")
    ap.add_argument("--negative-prompt-file", required=True,
                    help="a text file holding the negative prompt: for GEN3C's own conditioning, the default "
                         "--negative_prompt of its single-image inference script (copy it from your checkout of "
                         "nv-tlabs/GEN3C; lyra does not ship NVIDIA's text)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = ap.parse_args(argv)
    from lyra.utils.inputs import read_text

    negative = read_text(args.negative_prompt_file, "negative prompt file").strip()
    emb = compute_prompt_embeddings(args.t5_dir, args.prompt, negative, device=args.device,
                                    dtype=getattr(torch, args.dtype))
    print(f"{emb.save(args.out)}: prompt {list(emb.prompt.shape)}, negative prompt {list(emb.negative_prompt.shape)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

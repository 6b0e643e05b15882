"""Every command survives bad input: one line on stderr naming the file, a non-zero exit, no traceback, no output.

The corpus below is what an attacker or a tired user hands the ``lyra`` command: empty, truncated and foreign
files behind the right extension, NaN/Inf and negative values, wrong shapes and aspect ratios, headers that
promise absurd sizes, pickles in npy/npz, unknown and missing keys, wrong types. Each case runs the CLI in
process (a few through a subprocess) on tiny inputs.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from plyfile import PlyData, PlyElement

from lyra.cameras import default_intrinsics, method_trajectories, save_cameras_npz
from lyra.cli.main import main
from lyra.decoder import DecoderConfig, LyraDecoder
from lyra.errors import InputError
from lyra.gaussians import Gaussians, save_ply, save_spz
from lyra.render.video import write_video
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE
from lyra.utils.files import _umask, atomic_dir

H, W = 64, 96  # the input photo
TINY_TOK = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
TINY_DEC = {"width": 16, "depth": 2, "block_pattern": "1M1T", "mamba_d_state": 8, "mamba_headdim": 8,
            "mamba_chunk_size": 8, "attn_heads": 2, "distance_shift": -5.0}


# ---------------------------------------------------------------------------------------------- good inputs
@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """Valid inputs every case starts from (each case breaks one thing)."""
    d = tmp_path_factory.mktemp("good")
    torch.manual_seed(0)
    CausalVideoVAE(TINY_TOK).save_pretrained(d / "tok")
    LyraDecoder(DecoderConfig(**TINY_DEC)).save_pretrained(d / "dec")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((H, W, 3)) * 255).astype(np.uint8)).save(d / "photo.png")
    np.save(d / "depth.npy", np.full((H, W), 2.0, np.float32))
    n = 12
    g = Gaussians(means=torch.randn(n, 3) * 0.2 + torch.tensor([0.0, 0.0, 2.0]),
                  quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), scales=torch.full((n, 3), 0.05),
                  opacities=torch.full((n,), 0.8), colors=torch.rand(n, 3))
    save_ply(d / "scene.ply", g)
    save_spz(d / "scene.spz", g)
    save_cameras_npz(d / "cams.npz", method_trajectories(default_intrinsics(16, 16), 16, 16, 2)[0])
    write_video(d / "clip.mp4", torch.rand(9, 3, 16, 16))
    return d


# ---------------------------------------------------------------------------------------------- bad files
def png_with_size(good: Path, width: int, height: int) -> bytes:
    """The good PNG with its IHDR size replaced (CRC fixed): a header promising any size."""
    raw = (good / "photo.png").read_bytes()
    i = raw.index(b"IHDR")
    body = raw[i:i + 4] + struct.pack(">II", width, height) + raw[i + 12:i + 17]
    return raw[:i] + body + struct.pack(">I", zlib.crc32(body)) + raw[i + 21:]


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def ply_bytes(columns: dict[str, np.ndarray], text: bool = False) -> bytes:
    n = len(next(iter(columns.values())))
    arr = np.empty(n, dtype=[(k, v.dtype) for k, v in columns.items()])
    for k, v in columns.items():
        arr[k] = v
    buf = io.BytesIO()
    PlyData([PlyElement.describe(arr, "vertex")], text=text).write(buf)
    return buf.getvalue()


def gaussian_columns(n: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    cols = {k: rng.uniform(-1, 1, n).astype(np.float32) for k in ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2")}
    cols["z"] += 3.0
    cols["opacity"] = np.zeros(n, np.float32)
    cols.update({f"scale_{i}": np.full(n, -3.0, np.float32) for i in range(3)})
    cols.update({f"rot_{i}": np.array([1.0, 0, 0, 0][i], np.float32).repeat(n) for i in range(4)})
    return cols


def cams_npz(good: Path, **change) -> bytes:
    """The good camera file with arrays replaced / added (None removes one)."""
    with np.load(good / "cams.npz") as f:
        arrays = {k: f[k] for k in f.files}
    for k, v in change.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def spz_raw(good: Path) -> bytes:
    return gzip.decompress((good / "scene.spz").read_bytes())


def weights_with(good: Path, change: Callable[[dict], dict]) -> bytes:
    from safetensors.torch import load_file, save

    return save(change(load_file(str(good / "dec" / "model.safetensors"))))


def with_nan(state: dict) -> dict:
    k = next(k for k, v in state.items() if v.is_floating_point())
    state[k] = state[k].clone()
    state[k].view(-1)[0] = float("nan")
    return state


# ---------------------------------------------------------------------------------------------- the corpus
@dataclass(frozen=True)
class Case:
    """One malformed input.

    Attributes:
        files: name -> bytes (or a function of the good folder giving them), written into the case's folder;
            a name ending in "/" is a folder (its files given as "dir/name").
        argv: the command line; "{d}" is the case's folder, "{g}" the good inputs, "{out}" the output path.
        bad: text the one-line message must contain (the offending file's name).
        out: the output the command would write ("{d}/out" by default).
        rc: expected exit code.
    """

    files: dict[str, bytes | Callable[[Path], bytes]]
    argv: str
    bad: str
    out: str = "{d}/out"
    rc: int = 2


TINY_RUN = "--tokenizer {g}/tok --decoder {g}/dec --height 32 --width 48 --frames 9 --orbit-frames 4 --quiet"


def gen(image: str = "{g}/photo.png", depth: str = "--depth {g}/depth.npy", models: str = TINY_RUN) -> str:
    """A tiny ``lyra generate`` command line."""
    return f"generate {image} {depth} {models} --out {{out}}"


GEN_IMG = gen(image="{d}/%s")
GEN_DEPTH = gen(depth="--depth {d}/%s")
GEN_STEREO = gen(depth="--stereo {d}/right.png --calib {d}/calib.txt")
RENDER = "render {d}/%s --frames 2 --height 16 --width 16 --out {out}"
RENDER_CAMS = "render {g}/scene.ply --cameras {d}/%s --out {out}"
WORLD = "world render --world {d}/%s --frames 2 --height 16 --width 16 --supersample 1 --out {out}"
TRAIN = "train {d}/%s --output-dir {out}"
ROUNDTRIP = "tokenizer roundtrip {d}/%s {out} --tokenizer {g}/tok"


def photo(g: Path) -> bytes:
    return (g / "photo.png").read_bytes()


def resized_photo(g: Path, w: int = W // 2, h: int = H // 2) -> bytes:
    buf = io.BytesIO()
    Image.open(g / "photo.png").resize((w, h)).save(buf, format="PNG")
    return buf.getvalue()


def tiny_dec_config(g: Path) -> bytes:
    return (g / "dec" / "config.json").read_bytes()


def tiny_dec_weights(g: Path) -> bytes:
    return (g / "dec" / "model.safetensors").read_bytes()


def decoder_case(config: bytes | Callable[[Path], bytes], weights: bytes | Callable[[Path], bytes], bad: str) -> Case:
    """generate with --decoder {d}/dec holding this config.json and model.safetensors."""
    return Case({"dec/config.json": config, "dec/model.safetensors": weights},
                gen(models=TINY_RUN.replace("--decoder {g}/dec", "--decoder {d}/dec")), bad)


def npy_claiming(shape: tuple[int, ...], dtype: str = "<f4", body: int = 64) -> bytes:
    """An npy header promising ``shape`` followed by only ``body`` bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(body)


def zip_of(**members: bytes) -> bytes:
    """An npz built member by member (``name=npy bytes``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(f"{name}.npy", data)
    return buf.getvalue()


CASES: dict[str, Case] = {
    # ---- images (generate IMAGE)
    "image_empty": Case({"empty.png": b""}, GEN_IMG % "empty.png", "empty.png"),
    "image_text_named_png": Case({"notes.png": b"these are my notes\n"}, GEN_IMG % "notes.png", "notes.png"),
    "image_truncated": Case({"cut.png": lambda g: photo(g)[: len(photo(g)) // 2]}, GEN_IMG % "cut.png", "cut.png"),
    "image_jpg_of_zeros": Case({"zeros.jpg": b"\0" * 4096}, GEN_IMG % "zeros.jpg", "zeros.jpg"),
    "image_header_1e10_pixels": Case({"bomb.png": lambda g: png_with_size(g, 100_000, 100_000)}, GEN_IMG % "bomb.png",
                                     "bomb.png"),
    "image_is_a_folder": Case({"album.png/": b""}, GEN_IMG % "album.png", "album.png"),
    "image_missing": Case({}, GEN_IMG % "nowhere.png", "nowhere.png"),
    # ---- scene scale (generate --target-median)
    "target_median_zero": Case({}, gen(models=TINY_RUN + " --target-median 0"), "--target-median"),
    "target_median_nan": Case({}, gen(models=TINY_RUN + " --target-median nan"), "--target-median"),
    "target_median_with_world": Case({}, f"generate --generator oracle --world 0 {TINY_RUN} --target-median 3 "
                                     "--out {out}", "--target-median"),
    # ---- depth (generate --depth)
    "depth_3x3_for_64x96": Case({"photo.png": photo, "tiny.npy": npy_bytes(np.ones((3, 3), np.float32))},
                                GEN_DEPTH % "tiny.npy", "tiny.npy"),
    "depth_portrait_for_landscape": Case({"photo.png": photo, "tall.npy": npy_bytes(np.ones((96, 64), np.float32))},
                                         GEN_DEPTH % "tall.npy", "tall.npy"),
    "depth_pickled_objects": Case({"photo.png": photo, "obj.npy": npy_bytes(np.array([{"x": 1}], object), True)},
                                  GEN_DEPTH % "obj.npy", "obj.npy"),
    "depth_all_nan": Case({"photo.png": photo, "nan.npy": npy_bytes(np.full((H, W), np.nan, np.float32))},
                          GEN_DEPTH % "nan.npy", "nan.npy"),
    "depth_all_negative": Case({"photo.png": photo, "neg.npy": npy_bytes(-np.ones((H, W), np.float32))},
                               GEN_DEPTH % "neg.npy", "neg.npy"),
    "depth_header_1e10_values": Case({"photo.png": photo, "huge.npy": npy_claiming((100_000, 100_000))},
                                     GEN_DEPTH % "huge.npy", "huge.npy"),
    "depth_truncated_npy": Case({"photo.png": photo, "cut.npy": npy_bytes(np.ones((H, W), np.float32))[:-100]},
                                GEN_DEPTH % "cut.npy", "cut.npy"),
    "depth_3d_stack": Case({"photo.png": photo, "stack.npy": npy_bytes(np.ones((2, H, W), np.float32))},
                           GEN_DEPTH % "stack.npy", "stack.npy"),
    "depth_strings": Case({"photo.png": photo, "words.npy": npy_bytes(np.full((H, W), "far"))},
                          GEN_DEPTH % "words.npy", "words.npy"),
    "depth_rgb_png": Case({"photo.png": photo, "colour.png": photo}, GEN_DEPTH % "colour.png", "colour.png"),
    "depth_unknown_suffix": Case({"photo.png": photo, "depth.txt": b"1 2 3\n"}, GEN_DEPTH % "depth.txt", "depth.txt"),
    "depth_npz_pickle": Case({"photo.png": photo, "obj.npz": npz_bytes(depth=np.array([None, 1.0], object))},
                             GEN_DEPTH % "obj.npz", "obj.npz"),
    "depth_npz_no_arrays": Case({"photo.png": photo, "none.npz": npz_bytes()}, GEN_DEPTH % "none.npz", "none.npz"),
    "depth_pfm_header_1e10": Case({"photo.png": photo, "big.pfm": b"Pf\n100000 100000\n-1.0\n" + b"\0" * 64},
                                  GEN_DEPTH % "big.pfm", "big.pfm"),
    "stereo_calib_garbage": Case({"right.png": photo, "calib.txt": b"cam0 is [1 2 3]\n"}, GEN_STEREO, "calib.txt"),
    "stereo_right_other_size": Case({"right.png": resized_photo,
                                     "calib.txt": b"cam0=[50 0 48; 0 50 32; 0 0 1]\nbaseline=100\n"},
                                    GEN_STEREO, "right.png"),
    # ---- decoder / tokenizer weight folders
    "decoder_config_width_wide": decoder_case(b'{"width": "wide"}', tiny_dec_weights, "config.json"),
    "decoder_config_unknown_key": decoder_case(b'{"colour": "red"}', tiny_dec_weights, "config.json"),
    "decoder_config_not_json": decoder_case(b"{width: 16,", tiny_dec_weights, "config.json"),
    "decoder_config_a_list": decoder_case(b"[16, 2]", tiny_dec_weights, "config.json"),
    "decoder_weights_garbage": decoder_case(tiny_dec_config, b"\x07" * 300, "model.safetensors"),
    "decoder_weights_truncated": decoder_case(tiny_dec_config, lambda g: tiny_dec_weights(g)[:500],
                                              "model.safetensors"),
    "decoder_weights_wrong_keys": decoder_case(tiny_dec_config, lambda g: weights_with(g, lambda s: {
        "foo.weight": torch.zeros(3)}), "model.safetensors"),
    "decoder_weights_nan": decoder_case(tiny_dec_config, lambda g: weights_with(g, with_nan), "model.safetensors"),
    "tokenizer_config_binary": Case({"tok/config.json": b"\xff\xfe binary", "tok/model.safetensors": b"x"},
                                    gen(models=TINY_RUN.replace("--tokenizer {g}/tok", "--tokenizer {d}/tok")),
                                    "config.json"),
    "out_is_a_file": Case({"out": b"my thesis, not a folder"}, gen(), "out: exists and is not a folder"),
    # ---- Gaussian scenes (render SCENE)
    "ply_header_1e8_vertices": Case({"big.ply": lambda g: (g / "scene.ply").read_bytes().replace(
        b"element vertex 12\n", b"element vertex 100000000\n")}, RENDER % "big.ply", "big.ply"),
    "ply_ascii_header_1e8": Case({"big.ply": ply_bytes(gaussian_columns(), text=True).replace(
        b"element vertex 4\n", b"element vertex 100000000\n")}, RENDER % "big.ply", "big.ply"),
    "ply_nan_position": Case({"nan.ply": lambda g: ply_bytes({**gaussian_columns(), "x": np.array(
        [0, np.nan, 0, 0], np.float32)})}, RENDER % "nan.ply", "nan.ply"),
    "ply_inf_scale": Case({"inf.ply": lambda g: ply_bytes({**gaussian_columns(), "scale_0": np.array(
        [0, np.inf, 0, 0], np.float32)})}, RENDER % "inf.ply", "inf.ply"),
    "ply_missing_opacity": Case({"noop.ply": lambda g: ply_bytes(
        {k: v for k, v in gaussian_columns().items() if k != "opacity"})}, RENDER % "noop.ply", "noop.ply"),
    "ply_integer_opacity": Case({"int.ply": lambda g: ply_bytes(
        {**gaussian_columns(), "opacity": np.zeros(4, np.int32)})}, RENDER % "int.ply", "int.ply"),
    "ply_zero_vertices": Case({"void.ply": lambda g: ply_bytes({k: v[:0] for k, v in gaussian_columns().items()})},
                              RENDER % "void.ply", "void.ply"),
    "ply_empty": Case({"empty.ply": b""}, RENDER % "empty.ply", "empty.ply"),
    "ply_is_a_png": Case({"photo.ply": photo}, RENDER % "photo.ply", "photo.ply"),
    "scene_unknown_suffix": Case({"scene.obj": b"v 0 0 0\n"}, RENDER % "scene.obj", "scene.obj"),
    "spz_garbage": Case({"junk.spz": b"\x00\x01hello" * 20}, RENDER % "junk.spz", "junk.spz"),
    "spz_truncated": Case({"cut.spz": lambda g: (g / "scene.spz").read_bytes()[:40]}, RENDER % "cut.spz", "cut.spz"),
    "spz_header_1e8_points": Case({"big.spz": lambda g: gzip.compress(
        spz_raw(g)[:8] + struct.pack("<I", 10**8) + spz_raw(g)[12:])}, RENDER % "big.spz", "big.spz"),
    "spz_decompression_bomb": Case({"bomb.spz": lambda g: gzip.compress(spz_raw(g) + bytes(8 << 20))},
                                   RENDER % "bomb.spz", "bomb.spz"),
    # ---- cameras (render --cameras)
    "cameras_pickled_objects": Case({"obj.npz": lambda g: cams_npz(g, w2c=np.array([None], object))},
                                    RENDER_CAMS % "obj.npz", "obj.npz"),
    "cameras_nan_pose": Case({"nan.npz": lambda g: cams_npz(g, w2c=np.full((2, 4, 4), np.nan))},
                             RENDER_CAMS % "nan.npz", "nan.npz"),
    "cameras_height_1e6": Case({"tall.npz": lambda g: cams_npz(g, height=np.int64(10**6))},
                               RENDER_CAMS % "tall.npz", "tall.npz"),
    "cameras_negative_width": Case({"neg.npz": lambda g: cams_npz(g, width=np.int64(-16))},
                                   RENDER_CAMS % "neg.npz", "neg.npz"),
    "cameras_height_as_array": Case({"arr.npz": lambda g: cams_npz(g, height=np.array([16, 16]))},
                                    RENDER_CAMS % "arr.npz", "arr.npz"),
    "cameras_missing_K": Case({"noK.npz": lambda g: cams_npz(g, K=None)}, RENDER_CAMS % "noK.npz", "noK.npz"),
    "cameras_K_wrong_shape": Case({"k5.npz": lambda g: cams_npz(g, K=np.ones((2, 5)))}, RENDER_CAMS % "k5.npz",
                                  "k5.npz"),
    "cameras_unknown_key": Case({"extra.npz": lambda g: cams_npz(g, focal=np.ones(2))}, RENDER_CAMS % "extra.npz",
                                "extra.npz"),
    "cameras_not_a_zip": Case({"text.npz": b"w2c = identity\n"}, RENDER_CAMS % "text.npz", "text.npz"),
    "cameras_header_1e10": Case({"huge.npz": zip_of(w2c=npy_bytes(np.eye(4)[None]), K=npy_claiming((99999, 99999, 9)),
                                                    height=npy_bytes(np.int64(16)), width=npy_bytes(np.int64(16)))},
                                RENDER_CAMS % "huge.npz", "huge.npz"),
    # ---- worlds (world render --world)
    "world_not_json": Case({"w.json": b'{"format": "lyra.world", '}, WORLD % "w.json", "w.json"),
    "world_binary": Case({"w.json": b"\x89PNG\r\n\x1a\n\x00\x00"}, WORLD % "w.json", "w.json"),
    "world_nested_1e5_deep": Case({"w.json": b"[" * 100_000 + b"]" * 100_000}, WORLD % "w.json", "w.json"),
    "world_missing_version": Case({"w.json": b'{"primitives": []}'}, WORLD % "w.json", "w.json"),
    "world_unknown_primitive": Case({"w.json": json.dumps({"version": 1, "primitives": [{"type": "teapot"}]})
                                     .encode()}, WORLD % "w.json", "w.json"),
    "world_gaussians_unknown_suffix": Case({}, "world gaussians --height 8 --width 8 --out {out}", "scene.txt",
                                           out="{d}/scene.txt"),
    # ---- export
    "export_colmap_bad_cameras": Case({"cams.npz": b"PK\x03\x04 truncated"},
                                      "export {g}/scene.ply --to colmap --cameras {d}/cams.npz --out {out}",
                                      "cams.npz"),
    "export_spz_from_bad_ply": Case({"bad.ply": b"ply\nformat ascii 1.0\nelement vertex -3\nend_header\n"},
                                    "export {d}/bad.ply --to spz --out {out}", "bad.ply", out="{d}/out.spz"),
    # ---- view (fails before any server starts)
    "view_bad_ply": Case({"bad.ply": b"ply\nformat binary_little_endian 1.0\nend_header"}, "view {d}/bad.ply",
                         "bad.ply"),
    # ---- training configs (train CONFIG)
    "train_yaml_does_not_parse": Case({"bad.yaml": b"optim: {lr: 1e-4\nsteps: : 3\n"}, TRAIN % "bad.yaml", "bad.yaml"),
    "train_yaml_binary": Case({"w.yaml": b"\x89\x00\xffweights"}, TRAIN % "w.yaml", "w.yaml"),
    "train_yaml_a_list": Case({"list.yaml": b"- steps: 3\n"}, TRAIN % "list.yaml", "list.yaml"),
    "train_unknown_key": Case({"k.yaml": b"stepz: 3\n"}, TRAIN % "k.yaml", "k.yaml"),
    "train_wrong_type": Case({"t.yaml": b"optim:\n  lr: fast\n"}, TRAIN % "t.yaml", "t.yaml"),
    "train_nan_learning_rate": Case({"nan.yaml": b"optim:\n  lr: .nan\n"}, TRAIN % "nan.yaml", "nan.yaml"),
    "train_negative_steps": Case({"n.yaml": b"steps: -5\n"}, TRAIN % "n.yaml", "n.yaml"),
    "train_bad_decoder_override": Case({"o.yaml": b"model:\n  overrides:\n    width: wide\n"}, TRAIN % "o.yaml",
                                       "o.yaml"),
    "train_data_root_missing": Case({"r.yaml": b"data:\n  root: /no/such/dataset\n"}, TRAIN % "r.yaml",
                                    "/no/such/dataset"),
    "train_override_does_not_parse": Case({"ok.yaml": b"steps: 3\n"}, TRAIN % "ok.yaml" + " --set optim.lr=[1,",
                                          "optim.lr"),
    # ---- videos (tokenizer roundtrip)
    "video_empty": Case({"v.mp4": b""}, ROUNDTRIP % "v.mp4", "v.mp4", out="{d}/out.mp4"),
    "video_text_named_mp4": Case({"v.mp4": b"not a video\n" * 10}, ROUNDTRIP % "v.mp4", "v.mp4", out="{d}/out.mp4"),
    "video_truncated": Case({"v.mp4": lambda g: (g / "clip.mp4").read_bytes()[:600]}, ROUNDTRIP % "v.mp4", "v.mp4",
                            out="{d}/out.mp4"),
    # ---- datasets (eval, data check, sdg)
    "eval_data_missing": Case({}, "eval --data {d}/nodata --decoder {g}/dec --tokenizer {g}/tok --out {out}",
                              "nodata"),
    "eval_decoder_config_bad": Case({"dec/config.json": b'{"depth": 2.5}', "dec/model.safetensors": b"x"},
                                    "eval --data {d} --decoder {d}/dec --tokenizer {g}/tok --out {out}",
                                    "config.json"),
    "data_check_missing": Case({}, "data check {d}/nodata", "nodata"),
    "sdg_tokenizer_weights_garbage": Case({"tok/config.json": lambda g: (g / "tok" / "config.json").read_bytes(),
                                           "tok/model.safetensors": b"\x00" * 64},
                                          "sdg --scenes 1 --tokenizer {d}/tok --out {out}", "model.safetensors"),
}


def materialise(case: Case, d: Path, good: Path) -> tuple[list[str], Path]:
    """Write the case's files into ``d``; return its argv and output path."""
    for name, content in case.files.items():
        p = d / name
        if name.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content(good) if callable(content) else content)
    out = Path(case.out.format(d=d))
    argv = case.argv.format(d=d, g=good, out=out).split()
    return argv, out


def leftovers(out: Path) -> list[str]:
    """Hidden temporary siblings of ``out`` a failed run could leave."""
    return [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def check_one_line(rc: int, err: str, case: Case) -> str:
    lines = err.strip().splitlines()
    assert rc == case.rc, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    line = lines[0]
    assert line.startswith("lyra ") and (": error: " in line if case.rc == 2 else ": failed: " in line), line
    assert case.bad in line, line
    return line


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_leaves_nothing(name: str, good: Path, tmp_path: Path, capsys) -> None:
    case = CASES[name]
    argv, out = materialise(case, tmp_path, good)
    before = out.read_bytes() if out.is_file() else None
    rc = main(argv)
    captured = capsys.readouterr()
    check_one_line(rc, captured.err, case)
    assert "Traceback" not in captured.out
    if before is not None:  # the output path was a file of the user's: untouched
        assert out.read_bytes() == before
    else:
        assert not out.exists(), f"{out} was left behind"
    assert not leftovers(out)


def test_corpus_is_large_and_covers_every_command() -> None:
    commands = {c.argv.split()[0] for c in CASES.values()}
    assert len(CASES) >= 30
    assert commands >= {"generate", "render", "world", "export", "view", "train", "tokenizer", "eval", "data", "sdg"}


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("name", ["image_empty", "ply_header_1e8_vertices", "train_yaml_does_not_parse"])
def test_subprocess_has_no_traceback(name: str, good: Path, tmp_path: Path) -> None:
    case = CASES[name]
    argv, out = materialise(case, tmp_path, good)
    res = subprocess.run([sys.executable, "-m", "lyra.cli.main", *argv], capture_output=True, text=True, timeout=120)
    check_one_line(res.returncode, res.stderr, case)
    assert not out.exists() and not leftovers(out)


def test_debug_shows_the_exception(good: Path, tmp_path: Path, monkeypatch) -> None:
    argv, _ = materialise(CASES["train_unknown_key"], tmp_path, good)
    with pytest.raises(InputError, match="stepz"):
        main(["--debug", *argv])
    with pytest.raises(InputError, match="stepz"):
        main([*argv, "--debug"])
    monkeypatch.setenv("LYRA_DEBUG", "1")
    with pytest.raises(InputError, match="stepz"):
        main(argv)


def test_unexpected_failure_is_one_line_exit_1(monkeypatch, capsys) -> None:
    import lyra.cli.info

    def boom(args):
        raise RuntimeError("kernel exploded\nwith details")

    monkeypatch.setattr(lyra.cli.info, "run", boom)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("lyra info: failed: RuntimeError: kernel exploded; with details (run with --debug")


def test_interrupted_frames_leave_no_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    import lyra.cli.outputs

    calls = []

    def save_then_interrupt(path, image):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        Path(path).write_bytes(b"png")

    monkeypatch.setattr(lyra.cli.outputs, "save_png", save_then_interrupt)
    out = tmp_path / "new" / "frames"
    rc = main(["world", "render", "--frames", "3", "--height", "8", "--width", "8", "--supersample", "1",
               "--out", str(out)])
    assert rc == 130 and "interrupted" in capsys.readouterr().err and len(calls) == 2
    assert not (tmp_path / "new").exists()  # neither the folder nor the parent made for it


def test_atomic_dir_replaces_outputs_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "scene.ply").write_text("old")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError), atomic_dir(out) as tmp:
        (tmp / "scene.ply").write_text("half")
        raise ValueError("failed half way")
    assert (out / "scene.ply").read_text() == "old" and not leftovers(out)
    with atomic_dir(out) as tmp:
        (tmp / "scene.ply").write_text("new")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.txt").write_text("a")
        assert (out / "scene.ply").read_text() == "old"  # nothing moves before the end
    assert (out / "scene.ply").read_text() == "new" and (out / "notes.txt").read_text() == "mine"
    assert (out / "sub" / "a.txt").read_text() == "a" and not leftovers(out)
    with atomic_dir(out, stale=("scene.*", "frame_*.png")) as tmp:  # an earlier run's outputs do not linger
        (tmp / "frame_00000.png").write_text("f0")
    assert sorted(p.name for p in out.iterdir()) == ["frame_00000.png", "notes.txt", "sub"]
    fresh = tmp_path / "a" / "b"
    with atomic_dir(fresh) as tmp:
        (tmp / "x").write_text("x")
    assert (fresh / "x").read_text() == "x" and fresh.stat().st_mode & 0o777 == 0o777 & ~_umask()


def test_depth_of_same_aspect_is_resized_with_a_note(good: Path, tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "half.npy", np.full((H // 2, W // 2), 2.0, np.float32))
    out = tmp_path / "run"
    rc = main(["generate", str(good / "photo.png"), "--depth", str(tmp_path / "half.npy"),
               *TINY_RUN.format(g=good).split(), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.strip() == f"lyra: note: {tmp_path / 'half.npy'}: depth map 48x32 resized to the image's 96x64"
    assert json.loads((out / "report.json").read_text())["input"]["depth_note"].endswith("resized to the image's 96x64")
    assert not leftovers(out)

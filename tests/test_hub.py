"""Pretrained models by local folder or Hugging Face hub id (lyra.utils.hub): --depth-model and --t2i-model.

No test touches the network: ``no_network`` makes every DNS lookup fail (and records it), so the real
huggingface_hub code meets the real connection error a machine without a network gives; the Hugging Face cache
is an empty folder per test, filled in the hub's layout where a test needs a cached model.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lyra.cli.main import main
from lyra.depth import DepthError, load_depth_model, resolve_depth
from lyra.pipelines import TextToImageError, load_text_to_image
from lyra.utils.hub import parse_hub_id, resolve_pretrained
from lyra.utils.images import save_png

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
pytestmark = pytest.mark.skipif(importlib.util.find_spec("huggingface_hub") is None,
                                reason="huggingface_hub not installed")

HUB_ID = "depth-anything/Depth-Anything-V2-Small-hf"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_network(monkeypatch, tmp_path: Path) -> list[str]:
    """No network (every DNS lookup fails and is recorded) and an empty Hugging Face cache under ``tmp_path``."""
    from huggingface_hub import constants

    lookups: list[str] = []

    def fail(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return lookups


def tiny_dpt(folder: Path) -> Path:
    """The tiny random DPT of transformers' own tests, with its image processor, saved in ``folder``."""
    import transformers as tf

    cfg = tf.DPTConfig(image_size=32, patch_size=16, hidden_size=32, fusion_hidden_size=32, num_hidden_layers=2,
                       backbone_out_indices=[0, 1, 2, 3], num_attention_heads=4, intermediate_size=37,
                       is_hybrid=False, neck_hidden_sizes=[16, 32])
    torch.manual_seed(0)
    tf.DPTForDepthEstimation(cfg).save_pretrained(folder)
    tf.DPTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def cache_model(hf_home: Path, repo: str, folder: Path, *, only: tuple[str, ...] | None = None) -> Path:
    """Put ``folder``'s files (or ``only`` those) in the hub cache layout as ``repo`` at :data:`COMMIT` (= main)."""
    root = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for f in folder.iterdir():
        if only is None or f.name in only:
            shutil.copy(f, snapshot / f.name)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(COMMIT)
    return snapshot


def one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# ---------------------------------------------------------------------------------------------- resolver
def test_parse_hub_id() -> None:
    assert parse_hub_id(HUB_ID) == (HUB_ID, None)
    assert parse_hub_id("Intel/dpt-large@main") == ("Intel/dpt-large", "main")
    assert parse_hub_id("owner/name@refs/pr/1") == ("owner/name", "refs/pr/1")
    for path in ("./missing_dir", "/abs/missing", "missing", "a/b/c", "~/models/dpt", "../x/y", "a--b/c", "a/..",
                 "owner/name@", "C:\\models\\dpt"):
        assert parse_hub_id(path) is None, path


def test_local_folders_and_missing_paths_never_touch_the_network(no_network, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    ref = resolve_pretrained("m")
    assert ref.source == "m" and ref.kwargs == {"local_files_only": True} and ref.hub_failure is None
    (tmp_path / "owner" / "name").mkdir(parents=True)  # a folder shaped like a hub id is still a folder
    with pytest.raises(DepthError, match="owner/name: not a depth model folder \\(no config.json\\)"):
        load_depth_model("owner/name")
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(DepthError, match="not a depth model folder \\(a file\\)"):
        load_depth_model(tmp_path / "f.json")
    for missing in ("./missing_dir", str(tmp_path / "abs" / "missing"), "missing"):
        with pytest.raises(DepthError, match=f"^{re.escape(missing)}: folder not found .*Hugging Face model id"):
            load_depth_model(missing)
    assert no_network == []


def test_hub_answers_become_one_line(no_network, monkeypatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError

    def answer(exc_type: type[Exception]):
        def probe(url, **kwargs):
            exc = exc_type.__new__(exc_type)  # the server's answer, without a version-specific HTTP response
            Exception.__init__(exc, f"{exc_type.__name__} for {url}")
            raise exc
        return probe

    answers = {GatedRepoError: "gated on the Hugging Face hub .*hf auth login",
               RepositoryNotFoundError: "not a local folder, and no such model or revision on the Hugging Face hub",
               EntryNotFoundError: "the Hugging Face model has no config.json \\(not a depth model\\)"}
    for exc_type, expected in answers.items():
        monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", answer(exc_type))
        with pytest.raises(DepthError, match=f"^depth model '{HUB_ID}': {expected}"):
            resolve_pretrained(HUB_ID, error=DepthError)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda url, **kwargs: None)
    ref = resolve_pretrained(HUB_ID + "@v2")  # the hub answers: from_pretrained downloads into the cache
    assert (ref.source, ref.kwargs) == (HUB_ID, {"local_files_only": False, "revision": "v2"})


@pytest.mark.parametrize("offline", [False, True], ids=["no-network", "HF_HUB_OFFLINE"])
def test_hub_id_without_network_or_cache_is_one_line(no_network, offline: bool, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    with pytest.raises(DepthError) as e:
        load_depth_model(HUB_ID)
    reason = "HF_HUB_OFFLINE is set" if offline else "ConnectError: [Errno -2] Name or service not known"
    assert str(e.value) == (
        f"depth model '{HUB_ID}': the Hugging Face hub could not be reached ({reason}) and it is neither a local "
        f"folder nor in the Hugging Face cache; download it on a machine with a network "
        f"(`hf download {HUB_ID} --local-dir DIR`) and pass --depth-model DIR")
    assert bool(no_network) == (not offline)  # the hub was tried, unless HF_HUB_OFFLINE
    with pytest.raises(TextToImageError, match="^text-to-image model 'owner/sd@fp16': .*`hf download owner/sd "
                       "--revision fp16 --local-dir DIR`\\) and pass --t2i-model DIR$"):
        load_text_to_image("owner/sd@fp16")


# ---------------------------------------------------------------------------------------------- depth models
@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="transformers not installed")
@pytest.mark.parametrize("where", ["folder", "cache, no network", "cache, HF_HUB_OFFLINE", "cache @commit"])
def test_depth_model_from_folder_or_hub_cache(no_network, tmp_path: Path, where: str, monkeypatch) -> None:
    """The same tiny model loads from its folder and, by hub id, from the normal cache (a user with a network
    finds it there after the first download); only the hub probe reaches for the network."""
    from huggingface_hub import constants

    folder = tiny_dpt(tmp_path / "dpt")
    name = str(folder)
    if where != "folder":
        cache_model(tmp_path / "hf", "lyra-test/tiny-dpt", folder)
        name = "lyra-test/tiny-dpt" + (f"@{COMMIT}" if where.endswith("@commit") else "")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", where.endswith("OFFLINE"))
    model = load_depth_model(name)
    assert model.output == "disparity"
    d = model(torch.rand(3, 20, 28))
    assert d.shape == (1, 20, 28) and torch.isfinite(d).all() and (d >= 0).all()
    out = resolve_depth(torch.rand(3, 20, 28), depth_model=name)
    assert out.source == "model" and out.depth.shape == (1, 20, 28)
    assert bool(no_network) == (where in ("cache, no network", "cache @commit"))


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="transformers not installed")
def test_incomplete_hub_cache_says_how_to_get_the_files(no_network, tmp_path: Path) -> None:
    cache_model(tmp_path / "hf", "lyra-test/tiny-dpt", tiny_dpt(tmp_path / "dpt"), only=("config.json",))
    with pytest.raises(DepthError, match="^depth model 'lyra-test/tiny-dpt': the Hugging Face hub could not be "
                       "reached .* its copy in the cache cannot be loaded .*--local-dir DIR`\\) and pass "
                       "--depth-model DIR$"):
        load_depth_model("lyra-test/tiny-dpt")


def test_generate_with_hub_id_and_no_network_exits_2(no_network, tmp_path: Path, capsys) -> None:
    save_png(tmp_path / "in.png", torch.rand(3, 32, 48))
    args = ["--out", str(tmp_path / "out"), "--height", "32", "--width", "48", "--frames", "9", "--quiet"]
    rc = main(["generate", str(tmp_path / "in.png"), "--depth-model", HUB_ID, *args])
    err = one_error_line(capsys.readouterr().err)
    assert rc == 2 and err.startswith(f"lyra generate: error: depth model '{HUB_ID}': the Hugging Face hub could "
                                      "not be reached (ConnectError")
    assert err.endswith(f"(`hf download {HUB_ID} --local-dir DIR`) and pass --depth-model DIR")
    tried = len(no_network)
    assert tried > 0
    rc = main(["generate", str(tmp_path / "in.png"), "--depth-model", "./missing_dir", *args])
    err = one_error_line(capsys.readouterr().err)
    assert rc == 2 and err.startswith("lyra generate: error: ./missing_dir: folder not found")
    assert len(no_network) == tried and not (tmp_path / "out").exists()


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="transformers not installed")
def test_hf_environment_variables_in_a_fresh_process(tmp_path: Path) -> None:
    """HF_HOME and HF_HUB_OFFLINE=1 as a user sets them: the cached id loads, an uncached one is one line."""
    cache_model(tmp_path / "hf", "lyra-test/tiny-dpt", tiny_dpt(tmp_path / "dpt"))
    code = ("from lyra.depth import load_depth_model\n"
            "print(load_depth_model('lyra-test/tiny-dpt').output)\n"
            f"load_depth_model('{HUB_ID}')\n")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and r.stdout == "disparity\n"
    assert r.stderr.strip().splitlines()[-1] == (
        f"lyra.depth.files.DepthError: depth model '{HUB_ID}': the Hugging Face hub could not be reached "
        f"(HF_HUB_OFFLINE is set) and it is neither a local folder nor in the Hugging Face cache; download it on a "
        f"machine with a network (`hf download {HUB_ID} --local-dir DIR`) and pass --depth-model DIR")

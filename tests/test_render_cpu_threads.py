"""The cpu rasterizer's thread pool: torch's OpenMP runtime shared, forked children, the atomic counter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit, prange

from lyra.render.cpu import threads

# A fresh process: which pool runs the kernels depends on what was loaded before lyra's first parallel region.
SCENE = """
import os, sys, math, torch
import lyra
from lyra.render.cpu import rasterize_cpu, threads
from lyra.render.options import RenderOptions
g = torch.Generator().manual_seed(0)
n = 20000
params = [torch.cat([torch.rand(n, 2, generator=g) * 2.4 - 1.2, torch.rand(n, 1, generator=g) * 3 + 2], 1),
          torch.randn(n, 4, generator=g), torch.rand(n, 3, generator=g) * 0.04 + 0.01,
          torch.rand(n, generator=g) * 0.8 + 0.1, torch.rand(1, n, 3, generator=g)]
K = torch.tensor([[64.0, 0, 32], [0, 64, 32], [0, 0, 1]])[None]
def render():
    ps = [p.clone().requires_grad_(True) for p in params]
    rgb, depth, alpha = rasterize_cpu(*ps, torch.eye(4)[None], K, 64, 64, torch.zeros(3), RenderOptions())
    (rgb.sum() + depth.sum() + alpha.sum()).backward()
    return torch.cat([rgb.flatten(), ps[0].grad.flatten(), ps[2].grad.flatten()])
def n_threads():
    return len(os.listdir("/proc/self/task"))
"""


def _run(body: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", SCENE + textwrap.dedent(body)], capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2", **env})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


linux_torch_gomp = pytest.mark.skipif(not sys.platform.startswith("linux") or threads.torch_libgomp() is None,
                                      reason="torch does not ship GNU OpenMP here")


@linux_torch_gomp
def test_kernels_run_on_torchs_openmp_threads() -> None:
    """With torch's pool shared, the process has fewer threads than with numba's own workqueue pool."""
    body = """
        torch.set_num_threads(2)
        x = torch.randn(512, 512); (x @ x).sum()
        render()
        print(threads.shares_torch_openmp(), __import__("numba").threading_layer(), n_threads())
    """
    shared, layer, n_shared = _run(body).split()
    assert (shared, layer) == ("True", "omp")
    own, layer, n_own = _run(body, NUMBA_THREADING_LAYER="workqueue").split()
    assert (own, layer) == ("False", "workqueue")
    assert int(n_shared) <= int(n_own) - 2  # numba's two workers are torch's threads


def test_user_choice_of_threading_layer_wins() -> None:
    out = subprocess.run([sys.executable, "-c", "import lyra.render.cpu as c, numba; "
                          "print(c.threads.shares_torch_openmp(), numba.config.THREADING_LAYER)"],
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "NUMBA_THREADING_LAYER": "workqueue"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "workqueue"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_forked_child_renders_on_its_own_thread() -> None:
    """GNU OpenMP is not fork-safe: a forked child must fall back to the serial kernels and agree."""
    out = _run("""
        parent = render()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            torch.set_num_threads(1)  # as torch.utils.data does in its workers: torch's own pool is not fork-safe
            ok = threads.parallel_allowed() is False or not threads.shares_torch_openmp()
            child = render()
            os.write(w, b"%d %g" % (ok, (child - parent).abs().max().item()))
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print(status, os.read(r, 100).decode())
    """)
    status, ok, diff = out.split()
    assert status == "0" and ok == "1"
    assert float(diff) < 1e-5


@njit(parallel=True)
def _claim_all(counter, n: int, n_work: int):
    seen = np.zeros(n, dtype=np.int64)
    for _ in prange(n_work):
        while True:
            i = threads.fetch_add(counter, 1)
            if i >= n:
                break
            seen[i] += 1
    return seen


def test_fetch_add_hands_out_every_index_once() -> None:
    counter = np.zeros(1, dtype=np.int64)
    seen = _claim_all(counter, 50000, 8)
    assert (seen == 1).all()
    assert counter[0] == 50000 + 8  # each work item's last claim overshoots by one


def test_workspace_recycles_only_free_buffers() -> None:
    from lyra.render.cpu import workspace

    workspace.clear()
    a = workspace.empty("t", (10, 3))
    a[:] = 1.0
    addr = a.__array_interface__["data"][0]
    view = a[2:]  # a view keeps the buffer busy after a is gone
    del a
    b = workspace.zeros("t", (10, 3))
    assert b.__array_interface__["data"][0] != addr  # a new buffer: the old one is still viewed
    assert (view == 1.0).all() and (b == 0).all()
    del view
    c = workspace.empty("t", (4, 5), np.int32)  # the first buffer is free again, and large enough
    assert c.__array_interface__["data"][0] == addr and c.shape == (4, 5) and c.dtype == np.int32
    big = workspace.empty("t", (1000,))  # nothing free is large enough: a new buffer
    assert big.shape == (1000,) and big.__array_interface__["data"][0] not in (addr,)
    held = [workspace.empty("u", (3,)) for _ in range(workspace.MAX_PER_KEY + 2)]  # beyond the cap: plain arrays
    assert len({h.__array_interface__["data"][0] for h in held}) == len(held)
    assert len(workspace._pool()["u"]) == workspace.MAX_PER_KEY
    huge = workspace.empty("v", (workspace.MAX_BYTES // 8,))  # over the byte cap: not kept
    assert huge.size == workspace.MAX_BYTES // 8 and not workspace._pool().get("v")
    del huge
    workspace.clear()
    assert workspace.pooled_bytes() == 0


def test_outputs_survive_the_next_call() -> None:
    """Tensors returned by one call must not be overwritten by the next (their buffers are in use)."""
    import torch

    from lyra.render.cpu import rasterize_cpu
    from lyra.render.options import RenderOptions

    g = torch.Generator().manual_seed(1)
    n = 300
    params = [torch.cat([torch.rand(n, 2, generator=g) - 0.5, torch.rand(n, 1, generator=g) + 2], 1),
              torch.randn(n, 4, generator=g), torch.rand(n, 3, generator=g) * 0.05 + 0.01,
              torch.rand(n, generator=g) * 0.8 + 0.1]
    K = torch.tensor([[32.0, 0, 16], [0, 32, 16], [0, 0, 1]])[None]
    outs = []
    for colour in (0.3, 1.0):
        ps = [p.clone().requires_grad_(True) for p in params] + [torch.full((1, n, 3), colour, requires_grad=True)]
        rgb, _, _ = rasterize_cpu(*ps, torch.eye(4)[None], K, 32, 32, torch.zeros(3), RenderOptions())
        rgb.sum().backward()
        outs.append((rgb, ps[0].grad, ps[4].grad))
    assert outs[0][0].max() <= 0.3 < 0.5 < outs[1][0].max()  # grey Gaussians, then white ones
    assert outs[0][1].abs().max() > 0 and not torch.equal(outs[0][1], outs[1][1])
    assert torch.equal(outs[0][2], outs[1][2])  # d rgb.sum / d colour does not depend on the colour


@pytest.mark.parametrize("layer", ["auto", "workqueue"])
def test_python_threads_render_at_once(layer: str) -> None:
    """Renders from several Python threads agree with one thread's (workqueue is serialised by a lock)."""
    out = _run("""
        from concurrent.futures import ThreadPoolExecutor
        ref = render()
        with ThreadPoolExecutor(3) as ex:
            outs = list(ex.map(lambda _: render(), range(6)))
        print(max((o - ref).abs().max().item() for o in outs), __import__("numba").threading_layer())
    """, **({} if layer == "auto" else {"NUMBA_THREADING_LAYER": "workqueue"}))
    diff, used = out.split()
    assert float(diff) < 1e-6
    if layer == "workqueue":
        assert used == "workqueue"


@pytest.mark.parametrize("layer", ["", "workqueue"])
def test_torch_thread_count_is_left_alone(layer: str) -> None:
    """The kernels follow torch.set_num_threads and never change it (numba's OpenMP launches used to set the
    shared runtime's count to numba's own: 1 -> 2 after the first render, so a fresh process and one that had
    rendered computed torch ops with different reduction orders)."""
    body = """
        import numba
        torch.set_num_threads(1)
        threads.describe()
        render()
        a = (torch.get_num_threads(), numba.get_num_threads())
        torch.set_num_threads(2)
        render()
        print(*a, torch.get_num_threads(), numba.get_num_threads())
    """
    assert _run(body, **({"NUMBA_THREADING_LAYER": layer} if layer else {})).split() == ["1", "1", "2", "2"]


def test_backward_is_bit_identical_from_run_to_run() -> None:
    """Two workers, float64 (no rounding to float32 hides the order of sums): every run gives the same
    gradients with the default deterministic tile assignment (dynamic claiming differed in 9 of 10 runs)."""
    import torch

    from lyra.render.cpu import rasterize_cpu
    from lyra.render.options import RenderOptions

    g = torch.Generator().manual_seed(0)
    n, H, W = 20000, 64, 96
    params = [torch.cat([torch.rand(n, 2, generator=g) * 2.4 - 1.2, torch.rand(n, 1, generator=g) * 3 + 2], 1),
              torch.randn(n, 4, generator=g), torch.rand(n, 3, generator=g) * 0.15 + 0.01,
              torch.rand(n, generator=g), torch.rand(2, n, 3, generator=g)]
    params = [p.double() for p in params]
    K = torch.tensor([[64.0, 0, 48], [0, 64, 32], [0, 0, 1]], dtype=torch.float64).expand(2, 3, 3)
    w2c = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    w2c[1, 0, 3] = 0.1
    target = torch.rand(2, H, W, 3, generator=g, dtype=torch.float64)
    torch.set_num_threads(2)  # the autouse fixture restores it
    grads = []
    for _ in range(6):
        ps = [p.clone().requires_grad_(True) for p in params]
        rgb, depth, _ = rasterize_cpu(*ps, w2c, K, W, H, torch.zeros(3, dtype=torch.float64), RenderOptions())
        (((rgb - target) ** 2).sum() + depth.sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in ps]))
    assert threads.num_workers() == 2 or not threads.parallel_allowed()
    assert all(torch.equal(grads[0], x) for x in grads[1:])

"""Test-wide settings: one torch thread per test process.

The suite runs under ``pytest -n 2`` on 2-core machines; with several threads per worker, torch's
OpenMP pools oversubscribe the cores and small element-wise ops get ~10x slower.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

import os

import pytest
import torch

# Two threads, as on the book's reference machine; tests must not depend on more.
torch.set_num_threads(min(2, torch.get_num_threads()))
os.environ.setdefault("MPLBACKEND", "Agg")


#: Every device this machine has: the CPU, and CUDA when present (Colab, the GPU machines), so that
#: `make test` on a GPU machine exercises the CUDA paths without any change.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

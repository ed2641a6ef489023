import os

import pytest
import torch

# Two threads, as on the book's reference machine; tests must not depend on more.
torch.set_num_threads(min(2, torch.get_num_threads()))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

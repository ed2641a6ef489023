"""Peak memory of one call, measured on the tensors that PyTorch's operators create.

``peak_memory(fn, *inputs)`` runs ``fn`` once under a ``TorchDispatchMode`` that sees every
operator's outputs, adds the size of each new storage when it is created and subtracts it when
the storage is freed; the answer is the highest total reached during the call. It is exact for
what a Python reader can see (the ``(B, h, N, N)`` score matrix, say), deterministic, and works on
any device; scratch space that a fused kernel allocates and frees inside one operator (such as
the tiles of ``scaled_dot_product_attention``) is not visible to it.
"""
from __future__ import annotations

import weakref
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class _StorageTracker(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._ptrs: set[tuple[str, int]] = set()

    def _free(self, key, nbytes):
        self._ptrs.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            storage = t.untyped_storage()
            key, nbytes = (str(t.device), storage.data_ptr()), storage.nbytes()
            if nbytes == 0 or key in self._ptrs:       # a view or an in-place result: no new memory
                continue
            self._ptrs.add(key)
            self.live += nbytes
            weakref.finalize(storage, self._free, key, nbytes)
            self.peak = max(self.peak, self.live)
        return out


def peak_memory(fn: Callable, *inputs, no_grad: bool = True) -> int:
    """Bytes: the peak of memory held by tensors created during ``fn(*inputs)`` (inputs and weights excluded)."""
    context = torch.inference_mode() if no_grad else torch.enable_grad()
    tracker = _StorageTracker()
    owner = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
    existing = list(inputs) + (list(owner.parameters()) + list(owner.buffers())
                               if isinstance(owner, torch.nn.Module) else [])
    for t in tree_leaves(existing):                   # views of inputs and weights allocate nothing
        if isinstance(t, torch.Tensor):
            tracker._ptrs.add((str(t.device), t.untyped_storage().data_ptr()))
    with context, tracker:
        out = fn(*inputs)
    del out
    return int(tracker.peak)

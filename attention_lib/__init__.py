"""attention_lib: attention mechanisms for vision and sequences, and the book's instruments.

``import attention_lib`` loads the mechanisms and their registry, which need torch and nothing else.
The notebooks' toolkit (plots, explorers, shape traces, tiny models, training...) and the chapters'
own modules load on first use: ``attention_lib.setup``, ``attention_lib.viz``, ``attention_lib.trace_shapes``
and the other names of :data:`_LAZY` are imported when they are first looked up.
"""
from __future__ import annotations

import importlib

from .bam import BAM
from .cbam import CBAM, CBAMAttention
from .eca import EfficientChannelAttention, eca_kernel_size
from .external_attention import ExternalAttention, MultiHeadExternalAttention
from .patch_embedding import PatchEmbedding
from .registry import MECHANISMS, Mechanism
from .selective_kernel import SelectiveKernel
from .self_attention import MultiHeadSelfAttention
from .squeeze_excitation import SqueezeExcitation

__version__ = "0.1.0"

#: Toolkit modules, reachable as ``attention_lib.<name>`` (``al.viz``, ``al.train``...).
_MODULES = ("i18n", "environment", "format", "instruments", "memory", "viz", "figures", "widgets", "viewer",
            "exercises", "data", "models", "train", "readings")

#: Names that resolve to an attribute of a toolkit module: ``al.setup`` is ``al.environment.setup``.
_LAZY = {
    "setup": "environment", "best_device": "environment",
    "trace_shapes": "instruments", "shape_table": "instruments", "count_parameters": "instruments",
    "count_flops": "instruments", "summary": "instruments", "benchmark": "instruments",
    "explorer": "widgets",
    "shapes_dataset": "data", "reversal_dataset": "data", "sample_photo": "data",
    "TinyCNN": "models", "TinyTransformer": "models", "TinyViT": "models",
    "fit": "train", "evaluate": "train", "trained_demo": "train", "trained_demos": "train",
}

__all__ = [
    "BAM", "CBAM", "CBAMAttention", "EfficientChannelAttention", "eca_kernel_size",
    "ExternalAttention", "MultiHeadExternalAttention", "PatchEmbedding", "MECHANISMS", "Mechanism",
    "SelectiveKernel", "MultiHeadSelfAttention", "SqueezeExcitation", "chapters", *_MODULES, *_LAZY,
]


def __getattr__(name: str):
    if name in _MODULES:
        module = importlib.import_module(f".toolkit.{name}", __name__)
    elif name in _LAZY:
        module = getattr(importlib.import_module(f".toolkit.{_LAZY[name]}", __name__), name)
    elif name == "chapters":
        module = importlib.import_module(".chapters", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = module          # looked up once
    return module


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""attention_lib: attention mechanisms for vision and sequences, and the book's instruments."""
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

__all__ = [
    "BAM", "CBAM", "CBAMAttention", "EfficientChannelAttention", "eca_kernel_size",
    "ExternalAttention", "MultiHeadExternalAttention", "PatchEmbedding", "MECHANISMS", "Mechanism",
    "SelectiveKernel", "MultiHeadSelfAttention", "SqueezeExcitation",
]

# The notebook toolkit (issue 4).
from . import i18n, instruments, viz
from .environment import best_device, setup
from .instruments import benchmark, count_flops, count_parameters, shape_table, summary, trace_shapes

__all__ += ["i18n", "instruments", "viz", "setup", "best_device", "trace_shapes", "shape_table",
            "count_parameters", "count_flops", "summary", "benchmark"]
from . import chapter, data, exercises, memory, models, train, widgets

__all__ += ["chapter", "data", "exercises", "memory", "models", "train", "widgets"]
from .data import reversal_dataset, sample_photo, shapes_dataset
from .models import TinyCNN, TinyTransformer, TinyViT
from .train import evaluate, fit, trained_demo

__all__ += ["shapes_dataset", "reversal_dataset", "sample_photo", "TinyCNN", "TinyTransformer", "TinyViT",
            "fit", "evaluate", "trained_demo"]
from .widgets import explorer

__all__ += ["explorer"]

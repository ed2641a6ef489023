"""Input and configuration checks shared by every module.

Each check raises a ``ValueError`` that names the expected shape and what came in,
so a reader sees the mistake in their own terms instead of an error from inside torch.
"""
from __future__ import annotations

import torch


def format_shape(shape) -> str:
    """``(2, 64, 8, 8)`` for a ``torch.Size`` or a tuple of ints: the one way shapes are written everywhere."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def _shape(x: torch.Tensor) -> str:
    return format_shape(x.shape)


def check_feature_map(x: torch.Tensor, channels: int, name: str) -> None:
    """Checks that ``x`` is a floating ``(B, channels, H, W)`` tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} expects a torch.Tensor of shape (B, {channels}, H, W), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} expects input of shape (B, {channels}, H, W), got {_shape(x)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} expects a floating-point tensor of shape (B, {channels}, H, W), got dtype {x.dtype}")


def check_tokens(x: torch.Tensor, dim: int, name: str) -> None:
    """Checks that ``x`` is a floating ``(B, N, dim)`` tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} expects a torch.Tensor of shape (B, N, {dim}), got {type(x).__name__}")
    if x.dim() != 3 or x.shape[2] != dim:
        raise ValueError(f"{name} expects input of shape (B, N, {dim}), got {_shape(x)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} expects a floating-point tensor of shape (B, N, {dim}), got dtype {x.dtype}")


def check_positive(value, what: str, name: str, minimum: int = 1) -> int:
    """The one integer check of the package: ``value`` must be an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        need = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name}: {what} must be {need}, got {value!r}")
    return value


def check_odd_kernel(value, what: str, name: str) -> int:
    check_positive(value, what, name)
    if value % 2 == 0:
        raise ValueError(f"{name}: {what} must be odd so that the output keeps the input's size, got {value}")
    return value


def hidden_width(channels: int, reduction: int, name: str, floor: int = 0) -> int:
    """``max(channels // reduction, floor)``; zero hidden units is a ``ValueError``."""
    check_positive(channels, "channels", name)
    check_positive(reduction, "reduction", name)
    hidden = max(channels // reduction, floor)
    if hidden < 1:
        raise ValueError(
            f"{name}: channels // reduction = {channels} // {reduction} = 0 leaves no hidden unit; "
            f"use a reduction of at most {channels}"
        )
    return hidden

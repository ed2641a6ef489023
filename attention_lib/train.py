"""Training for the book's tiny models: a plain loop, and trained demos cached on disk.

``fit`` is the loop a reader can read in one go (AdamW, one-cycle learning rate, a fixed seed). Its
progress bar is ``tqdm.auto``'s widget inside a Jupyter kernel and nothing elsewhere: a text bar would
write to stderr, which the strict book build treats as an error.

``trained_demo(kind, **config)`` trains a demo model once and saves it in a cache folder
(``$ATTENTION_LIB_CACHE``, else ``~/.cache/attention_lib``; :func:`set_cache_dir` overrides both), keyed by
the demo, its full configuration, the model's architecture (its ``repr``), ``attention_lib.__version__``
and torch's major.minor version: the Chinese twin of a chapter, later chapters and re-runs load the
weights (``torch.load(weights_only=True)``) instead of training again, and a changed configuration or
version trains anew.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import data as _data
from .i18n import register, t
from .environment import best_device as _best_device
from .models import TinyCNN, TinyTransformer, TinyViT

History = Dict[str, list]

register({
    "train.progress": {"en": "training {name}", "zh": "训练 {name}"},
    "train.loss": {"en": "loss", "zh": "损失"},
    "train.acc": {"en": "acc", "zh": "准确率"},
    "train.val_acc": {"en": "val acc", "zh": "验证准确率"},
})


# ----------------------------------------------------------------------------------------------- helpers

def _tensors(data, what: str):
    """(inputs, targets) from a ShapesData / ReversalData / (x, y) tuple / TensorDataset."""
    if isinstance(data, torch.utils.data.TensorDataset):
        data = data.tensors
    if not isinstance(data, (tuple, list)) or len(data) < 2 \
            or not all(isinstance(t, torch.Tensor) for t in data[:2]) or len(data[0]) != len(data[1]):
        raise ValueError(f"{what} must be (inputs, targets) tensors with the same first dimension "
                         f"(a ShapesData, ReversalData, tuple or TensorDataset), got {type(data).__name__}")
    return data[0], data[1]


def _loss_and_correct(logits: torch.Tensor, targets: torch.Tensor):
    """Cross-entropy and the number of correct predictions; (B, K) or per-position (B, L, K) logits."""
    if logits.dim() == 3:                                   # (B, L, K): one prediction per position
        logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    loss = F.cross_entropy(logits, targets)
    correct = (logits.argmax(-1) == targets).sum()
    return loss, correct, targets.numel()


def _in_jupyter_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _progress_bar(total: int, desc: str, enabled: bool):
    """tqdm.auto's widget in a Jupyter kernel with working ipywidgets; otherwise a disabled bar."""
    if enabled and _in_jupyter_kernel():
        try:
            with warnings.catch_warnings():                # tqdm warns (to stderr) when ipywidgets is missing
                warnings.simplefilter("ignore")
                from tqdm.auto import tqdm as auto_tqdm
                from tqdm.notebook import tqdm as notebook_tqdm
                if issubclass(auto_tqdm, notebook_tqdm):   # not the text fallback, which writes to stderr
                    return auto_tqdm(total=total, desc=desc, leave=True)
        except Exception:
            pass
    from tqdm import tqdm as std_tqdm
    return std_tqdm(total=total, disable=True)


# ------------------------------------------------------------------------------------------ fit, evaluate

def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, data, *, batch_size: int = 256) -> Dict[str, float]:
    """``{"loss": mean loss, "acc": accuracy}`` of ``model`` on ``data`` in eval mode.

    For sequence outputs ``(B, L, K)`` both are per position."""
    x, y = _tensors(data, "evaluate: data")
    device = _model_device(model)
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        loss, c, k = _loss_and_correct(model(xb), yb)
        total_loss += loss.item() * k
        correct += int(c)
        count += k
    model.train(was_training)
    return {"loss": total_loss / count, "acc": correct / count}


def fit(model: nn.Module, train_data, *, epochs: int = 5, lr: float = 3e-3, batch_size: int = 64, seed: int = 0,
        device=None, progress: bool = True, val_data=None, weight_decay: float = 0.01,
        num_threads: Optional[int] = None, desc: Optional[str] = None) -> History:
    """Trains ``model`` on ``train_data`` (inputs, targets) with AdamW and a one-cycle learning rate.

    The shuffling and any randomness inside the model (dropout) come from ``seed``, so the same model
    initialisation and arguments give the same history (the global RNG state is left as it was).
    Returns a dict of per-epoch lists: ``epoch``, ``loss``, ``acc`` (training accuracy, averaged over the
    epoch), ``val_loss``, ``val_acc`` (when ``val_data`` is given) and ``seconds`` (each epoch's
    wall time). The model ends in eval mode on ``device`` (default: CUDA, then MPS, then CPU).
    ``num_threads``: CPU threads while training, restored afterwards (None: torch's setting). The tiny
    models' operations are small: on a busy machine one thread is much faster than two that wait for each other.
    """
    x, y = _tensors(train_data, "fit: train_data")
    for value, what in ((epochs, "epochs"), (batch_size, "batch_size")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"fit: {what} must be a positive integer, got {value!r}")
    device = _best_device() if device is None else torch.device(device)
    model.to(device)
    n = len(x)
    steps = (n + batch_size - 1) // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps)
    order = torch.Generator().manual_seed(seed)
    history: History = {"epoch": [], "loss": [], "acc": [], "seconds": []}
    if val_data is not None:
        history.update(val_loss=[], val_acc=[])

    fork_devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    desc = t("train.progress", name=type(model).__name__) if desc is None else desc
    bar = _progress_bar(epochs * steps, desc, progress)
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            for epoch in range(1, epochs + 1):
                start = time.perf_counter()
                model.train()
                total_loss = torch.zeros((), device=device)
                correct = torch.zeros((), dtype=torch.long, device=device)
                count = 0
                for idx in torch.randperm(n, generator=order).split(batch_size):
                    xb, yb = x[idx].to(device), y[idx].to(device)
                    loss, c, k = _loss_and_correct(model(xb), yb)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    total_loss += loss.detach() * k      # stays on the device: no sync per step
                    correct += c
                    count += k
                    bar.update(1)
                history["epoch"].append(epoch)
                history["loss"].append(total_loss.item() / count)
                history["acc"].append(correct.item() / count)
                postfix = {t("train.loss"): f"{history['loss'][-1]:.3f}",
                           t("train.acc"): f"{history['acc'][-1]:.3f}"}
                if val_data is not None:
                    val = evaluate(model, val_data)
                    history["val_loss"].append(val["loss"])
                    history["val_acc"].append(val["acc"])
                    postfix[t("train.val_acc")] = f"{val['acc']:.3f}"
                history["seconds"].append(time.perf_counter() - start)   # .item() above synchronised
                bar.set_postfix(postfix)
    finally:
        bar.close()
        torch.set_num_threads(threads)
    model.eval()
    return history


# ---------------------------------------------------------------------------------------- trained demos

_CACHE_DIR: Optional[Path] = None
_FORMAT = 1


def set_cache_dir(path: Union[str, os.PathLike, None]) -> None:
    """Overrides the cache folder for this process (``None``: back to the environment/default)."""
    global _CACHE_DIR
    _CACHE_DIR = None if path is None else Path(path)


def cache_dir() -> Path:
    """The folder of trained demos.

    :func:`set_cache_dir`'s folder, else ``$ATTENTION_LIB_CACHE``, else ``~/.cache/attention_lib``."""
    if _CACHE_DIR is not None:
        return _CACHE_DIR
    env = os.environ.get("ATTENTION_LIB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "attention_lib"


class DemoSpec(NamedTuple):
    """A trainable demo: its default configuration, how to build the model, how to make its data."""
    defaults: dict
    build: Callable[[dict], nn.Module]
    make_data: Callable[[dict, str], tuple]     # (config, "train" | "val") -> data


def _shapes_data(cfg, split):
    n, seed = (cfg["n_train"], cfg["seed"]) if split == "train" else (cfg["n_val"], cfg["seed"] + 10_000)
    return _data.shapes_dataset(n, size=cfg["size"], seed=seed)


def _reversal_data(cfg, split):
    n, seed = (cfg["n_train"], cfg["seed"]) if split == "train" else (cfg["n_val"], cfg["seed"] + 10_000)
    return _data.reversal_dataset(n, length=cfg["length"], vocab=cfg["vocab"], seed=seed)


_TRAINING = dict(epochs=6, lr=3e-3, batch_size=64, seed=0)

#: The demos :func:`trained_demo` knows, with their default configuration.
DEMOS: Dict[str, DemoSpec] = {
    # TinyCNN on the shapes images; attention: None or a feature-map mechanism name.
    "shapes_cnn": DemoSpec(
        dict(attention=None, width=16, reduction=4, size=32, n_train=2000, n_val=500, **_TRAINING),
        lambda c: TinyCNN(c["attention"], num_classes=len(_data.SHAPE_CLASSES), width=c["width"],
                          reduction=c["reduction"]),
        _shapes_data),
    # TinyTransformer reversing sequences: its self-attention learns the anti-diagonal.
    "reversal": DemoSpec(
        dict(attention="self_attention", length=8, vocab=16, dim=32, depth=1, num_heads=2,
             n_train=4000, n_val=500, **{**_TRAINING, "epochs": 8}),
        lambda c: TinyTransformer(c["vocab"], c["length"], dim=c["dim"], depth=c["depth"],
                                  num_heads=c["num_heads"], attention=c["attention"]),
        _reversal_data),
    # TinyViT on the shapes images. A ViT needs far more data than the CNN: ~0.5 validation accuracy here.
    "shapes_vit": DemoSpec(
        dict(attention="self_attention", patch_size=4, dim=32, depth=2, num_heads=2, size=32,
             n_train=2000, n_val=500, **{**_TRAINING, "epochs": 8}),
        lambda c: TinyViT(c["size"], c["patch_size"], num_classes=len(_data.SHAPE_CLASSES), dim=c["dim"],
                          depth=c["depth"], num_heads=c["num_heads"], attention=c["attention"]),
        _shapes_data),
}


class Demo(NamedTuple):
    """A trained demo: ``model`` (eval mode), its training ``history``, the full ``config``, whether it
    came ``from_cache``, the cache file ``path``, and the held-out ``val_data`` it was checked on."""
    model: nn.Module
    history: History
    config: dict
    from_cache: bool
    path: Path
    val_data: tuple


def demo_config(kind: str, **config) -> dict:
    """The full configuration of demo ``kind``: its defaults updated by ``config`` (unknown keys: ValueError)."""
    if kind not in DEMOS:
        raise ValueError(f"unknown demo {kind!r}; expected one of {sorted(DEMOS)}")
    defaults = DEMOS[kind].defaults
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise ValueError(f"demo {kind!r} has no setting {unknown}; its settings are {sorted(defaults)}")
    return {**defaults, **config}


def demo_key(kind: str, config: dict, architecture: str = "") -> str:
    """The cache key: a hash of the demo, its full configuration, the library and torch versions and the
    model's ``repr`` (so that a changed architecture retrains even before the version changes)."""
    from . import __version__

    torch_version = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    blob = json.dumps({"kind": kind, "config": config, "attention_lib": __version__, "torch": torch_version,
                       "format": _FORMAT, "architecture": architecture}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")     # atomic: readers never see half a file
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def trained_demo(kind: str, *, device=None, progress: bool = True, retrain: bool = False,
                 num_threads: Optional[int] = 1, **config) -> Demo:
    """The demo model ``kind`` trained with ``config`` (see ``DEMOS``): loaded from the cache, or trained and saved.

    ``trained_demo("shapes_cnn", attention="cbam")``, ``trained_demo("reversal")``. ``retrain=True``
    ignores a cached copy. ``num_threads`` goes to :func:`fit`: one CPU thread by default, because the
    tiny models' operations gain little from a second thread, and two threads competing with other work
    were measured ten times slower than one. The model is returned in eval mode on ``device`` (default:
    the best available).
    """
    cfg = demo_config(kind, **config)
    spec = DEMOS[kind]
    device = _best_device() if device is None else torch.device(device)
    val_data = spec.make_data(cfg, "val")      # the training set is only made when training

    def build() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg["seed"])     # the model's initialisation belongs to the configuration
            return spec.build(cfg)

    model = build()
    path = cache_dir() / f"{kind}-{demo_key(kind, cfg, repr(model))}.pt"
    if path.exists() and not retrain:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("kind") == kind and saved.get("config") == cfg:
                model.load_state_dict(saved["state_dict"])
                return Demo(model.to(device).eval(), saved["history"], cfg, True, path, val_data)
        except Exception:                      # unreadable or stale file: train again and overwrite it
            model = build()                    # a failed load may have overwritten some weights

    history = fit(model, spec.make_data(cfg, "train"), epochs=cfg["epochs"], lr=cfg["lr"],
                  batch_size=cfg["batch_size"], seed=cfg["seed"], device=device, progress=progress,
                  val_data=val_data, num_threads=num_threads, desc=t("train.progress", name=kind))
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _save(path, {"kind": kind, "config": cfg, "history": history, "state_dict": state, "format": _FORMAT})
    return Demo(model.eval(), history, cfg, False, path, val_data)

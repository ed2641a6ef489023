"""Training for the book's tiny models: a plain loop, and trained demos cached on disk.

``fit`` is the loop a reader can read in one go (AdamW, one-cycle learning rate, a fixed seed). Its
progress bar is ``tqdm.auto``'s widget inside a Jupyter kernel and nothing elsewhere: a text bar would
write to stderr, which the strict book build treats as an error.

``trained_demo(config)`` trains a demo model (a typed :class:`DemoConfig`) once and saves it in a cache folder
(``$ATTENTION_LIB_CACHE``, else ``~/.cache/attention_lib``; :func:`set_cache_dir` overrides both), keyed by
the demo, its full configuration, the model's architecture (its ``repr``), ``attention_lib.__version__``
and torch's major.minor version: the Chinese twin of a chapter, later chapters and re-runs load the
weights (``torch.load(weights_only=True)``) instead of training again, and a changed configuration or
version trains anew.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar, Dict, NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive
from . import data as _data
from .i18n import register, t
from .environment import best_device as _best_device
from .models import TinyCNN, TinyTokenNet, TinyTransformer, TinyViT

History = Dict[str, list]

register({
    "train.progress": {"en": "training {name}", "zh": "训练 {name}"},
    "train.status": {"en": "Training the demo {name} (seed {seed}, {epochs} epochs): only on this machine's first "
                           "run; later runs load it from the cache …",
                     "zh": "正在训练演示模型 {name}（随机种子 {seed}，{epochs} 轮）：只有本机第一次运行时才训练，"
                           "之后从缓存中加载……"},
    "train.status_many": {"en": "Training {n} demos ({names}) side by side in {workers} processes: only on this "
                                "machine's first run; later runs load them from the cache …",
                          "zh": "正在用 {workers} 个进程同时训练 {n} 个演示模型（{names}）：只有本机第一次运行时才训练，"
                                "之后从缓存中加载……"},
    "train.seeds": {"en": "seeds {seeds}", "zh": "随机种子 {seeds}"},
    "train.loss": {"en": "loss", "zh": "损失"},
    "train.acc": {"en": "acc", "zh": "准确率"},
    "train.val_acc": {"en": "val acc", "zh": "验证集准确率"},
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


class _Status:
    """A one-line note shown in a Jupyter cell while a demo trains, and removed (emptied) once it is trained.

    Some cells train for most of a minute on a cold cache; without it a student sees only ``[*]``. The note
    goes to a display of its own (never stdout or stderr), so the cell's printed results are the same on a cold
    and a warm cache."""

    def __init__(self, text: str):
        self.handle = None
        if _in_jupyter_kernel():
            from IPython.display import HTML, display
            self.handle = display(HTML(f'<p class="attention-training" style="margin:0.2em 0;font-style:italic">'
                                       f'{_escape(text)}</p>'), display_id=True)

    def close(self) -> None:
        if self.handle is not None:
            from IPython.display import HTML
            self.handle.update(HTML(""))


def _escape(text: str) -> str:
    import html
    return html.escape(text)


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

@contextlib.contextmanager
def threads(n: Optional[int] = 1):
    """Run the block with ``n`` CPU threads (``None``: leave torch's setting), restored afterwards. The tiny
    models' operations are small: on a busy machine one thread is much faster than two that wait for each other."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, data, *, batch_size: int = 256, num_threads: Optional[int] = None) -> Dict[str, float]:
    """``{"loss": mean loss, "acc": accuracy}`` of ``model`` on ``data`` in eval mode.

    For sequence outputs ``(B, L, K)`` both are per position. ``num_threads``: CPU threads meanwhile (:func:`threads`;
    None: torch's setting)."""
    with threads(num_threads):
        return _evaluate(model, data, batch_size)


def _evaluate(model: nn.Module, data, batch_size: int) -> Dict[str, float]:
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


def seed_accuracies(runs: Dict[str, list]) -> Dict[str, "Seeds"]:
    """Validation accuracies of trained demos, ``{variant: [Demo per seed]}`` -> ``{variant: readings.Seeds}``, one
    thread each (:func:`threads`): an experiment's numbers, ready for its readings (``al.readings``)."""
    from .readings import seeds
    return {name: seeds(evaluate(d.model, d.val_data, num_threads=1)["acc"] for d in demos)
            for name, demos in runs.items()}


def fit(model: nn.Module, train_data, *, epochs: int = 5, lr: float = 3e-3, batch_size: int = 64, seed: int = 0,
        device=None, progress: bool = True, val_data=None, weight_decay: float = 0.01,
        num_threads: Optional[int] = None, desc: Optional[str] = None, val_every: int = 1) -> History:
    """Trains ``model`` on ``train_data`` (inputs, targets) with AdamW and a one-cycle learning rate.

    The shuffling and any randomness inside the model (dropout) come from ``seed``, so the same model
    initialisation and arguments give the same history (the global RNG state is left as it was).
    Returns a dict of per-epoch lists: ``epoch``, ``loss``, ``acc`` (training accuracy, averaged over the
    epoch), ``val_loss``, ``val_acc`` (when ``val_data`` is given) and ``seconds`` (each epoch's
    wall time). ``val_every``: validate after every ``val_every``-th epoch and after the last (the ``val_*``
    lists then hold fewer entries). The model ends in eval mode on ``device`` (default: CUDA, then MPS, then CPU).
    ``num_threads``: CPU threads while training, restored afterwards (None: torch's setting). The tiny
    models' operations are small: on a busy machine one thread is much faster than two that wait for each other.
    """
    x, y = _tensors(train_data, "fit: train_data")
    check_positive(epochs, "epochs", "fit")
    check_positive(batch_size, "batch_size", "fit")
    check_positive(val_every, "val_every", "fit")
    device = _best_device() if device is None else torch.device(device)
    model.to(device)
    n = len(x)
    steps = (n + batch_size - 1) // batch_size
    # foreach: one batched update for all parameters; bitwise the same result, fewer small CPU kernels.
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps)
    order = torch.Generator().manual_seed(seed)
    history: History = {"epoch": [], "loss": [], "acc": [], "seconds": []}
    if val_data is not None:
        history.update(val_loss=[], val_acc=[])

    fork_devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    desc = t("train.progress", name=type(model).__name__) if desc is None else desc
    bar = _progress_bar(epochs * steps, desc, progress)
    try:
        # enable_grad: fit may be called under no_grad (a notebook cell that only evaluates, then trains)
        with threads(num_threads), torch.random.fork_rng(devices=fork_devices), torch.enable_grad():
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
                if val_data is not None and (epoch % val_every == 0 or epoch == epochs):
                    val = evaluate(model, val_data)
                    history["val_loss"].append(val["loss"])
                    history["val_acc"].append(val["acc"])
                    postfix[t("train.val_acc")] = f"{val['acc']:.3f}"
                history["seconds"].append(time.perf_counter() - start)   # .item() above synchronised
                bar.set_postfix(postfix)
    finally:
        bar.close()
    model.eval()
    return history


def one_thread():
    """Runs the block (or, as a decorator, the function) on one CPU thread, then restores torch's setting:
    :func:`threads` with ``n = 1``.

    The tiny models' operations are small: on a machine shared with other work, a second thread mostly waits
    (measured three times slower for chapter 6's scoring on 2 busy cores), and one thread also makes the
    order of every floating-point reduction, so every printed number, the same from build to build."""
    return threads(1)


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


@dataclass(frozen=True)
class DemoConfig:
    """A trainable demo: its settings as typed fields; each subclass says how to build its model and data.

    The configuration is the cache key (with the model's architecture and the library and torch
    versions), so the same configuration trained anywhere in the book is trained once. A chapter defines
    its own demos by subclassing (``kind`` names the cache files)::

        @dataclass(frozen=True)
        class MyDemo(DemoConfig):
            kind: ClassVar[str] = "my_demo"
            width: int = 16          # what the field means
            def build(self): ...
            def data(self, split): ...
    """
    kind: ClassVar[str] = ""
    epochs: int = 6                  # passes over the training set
    lr: float = 3e-3                 # peak learning rate of the one-cycle schedule
    batch_size: int = 64             # samples per optimiser step
    seed: int = 0                    # model initialisation, training data and shuffling

    def build(self) -> nn.Module:
        """The untrained model (called under ``torch.manual_seed(self.seed)``)."""
        raise NotImplementedError

    def data(self, split: str):
        """The ``"train"`` or ``"val"`` data: a ShapesData, ReversalData or (inputs, targets) tuple."""
        raise NotImplementedError

    def replace(self, **changes) -> "DemoConfig":
        """A copy with some settings changed (``ValueError`` naming the settings for an unknown one)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"demo {self.kind!r} has no setting {unknown}; its settings are "
                             f"{sorted(f.name for f in fields(self))}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __getitem__(self, key: str):
        """``config["width"]``: read access by name, as for the plain dictionaries of earlier versions."""
        return getattr(self, key)

    def _split_seed(self, split: str) -> int:
        if split not in ("train", "val"):
            raise ValueError(f"{type(self).__name__}.data: split must be 'train' or 'val', got {split!r}")
        return self.seed if split == "train" else self.seed + 10_000     # held-out images never seen in training


@dataclass(frozen=True)
class ShapesCNN(DemoConfig):
    """TinyCNN on the shapes images; its attention block is a feature-map mechanism or none."""
    kind: ClassVar[str] = "shapes_cnn"
    attention: Optional[str] = None  # a feature-map mechanism of the registry, or None for the baseline
    width: int = 16                  # channels of the first convolution; the attention block sees 2 * width
    reduction: int = 4               # reduction ratio for the mechanisms that have one
    size: int = 32                   # image side in pixels
    n_train: int = 2000              # training images
    n_val: int = 500                 # held-out images

    def build(self) -> nn.Module:
        return TinyCNN(self.attention, num_classes=len(_data.SHAPE_CLASSES), width=self.width,
                       reduction=self.reduction)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return _data.shapes_dataset(n, size=self.size, seed=self._split_seed(split))


@dataclass(frozen=True)
class Reversal(DemoConfig):
    """TinyTransformer reversing token sequences: its self-attention learns the anti-diagonal."""
    kind: ClassVar[str] = "reversal"
    attention: str = "self_attention"  # the token mixer
    length: int = 8                  # tokens per sequence
    vocab: int = 16                  # distinct tokens
    dim: int = 32                    # token width D
    depth: int = 1                   # transformer blocks
    num_heads: int = 2               # heads h
    n_train: int = 4000
    n_val: int = 500
    epochs: int = 8

    def build(self) -> nn.Module:
        return TinyTransformer(self.vocab, self.length, dim=self.dim, depth=self.depth, num_heads=self.num_heads,
                               attention=self.attention)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return _data.reversal_dataset(n, length=self.length, vocab=self.vocab, seed=self._split_seed(split))


@dataclass(frozen=True)
class ShapesViT(DemoConfig):
    """TinyViT on the shapes images. A ViT needs far more data than the CNN: ~0.5 validation accuracy here."""
    kind: ClassVar[str] = "shapes_vit"
    attention: str = "self_attention"  # the token mixer
    patch_size: int = 4              # patch side P in pixels
    dim: int = 32                    # token width D
    depth: int = 2                   # transformer blocks
    num_heads: int = 2               # heads h
    size: int = 32                   # image side in pixels
    n_train: int = 2000
    n_val: int = 500
    epochs: int = 8

    def build(self) -> nn.Module:
        return TinyViT(self.size, self.patch_size, num_classes=len(_data.SHAPE_CLASSES), dim=self.dim,
                       depth=self.depth, num_heads=self.num_heads, attention=self.attention)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return _data.shapes_dataset(n, size=self.size, seed=self._split_seed(split))


@dataclass(frozen=True)
class ContextCNN(DemoConfig):
    """TinyCNN on :func:`~attention_lib.toolkit.data.context_dataset`: a band far from the bar decides whether
    the answer is the bar's colour or its orientation, so the choice of channels depends on the whole image.

    By default one 1x1 conv stage follows the attention block, as the next block's first layer does in the
    papers' ResNets: the gate recalibrates features that a later layer uses (``after=0``: the gate feeds the
    pooled read-out directly)."""
    kind: ClassVar[str] = "context_cnn"
    attention: Optional[str] = None  # a feature-map mechanism of the registry, or None for the baseline
    width: int = 8                   # channels of the first convolution; the attention block sees 2 * width
    reduction: int = 1               # reduction ratio for the mechanisms that have one (1: no bottleneck)
    after: int = 1                   # 1x1 conv-BN-ReLU stages after the block (keep the 17-pixel receptive field)
    head_hidden: int = 0             # hidden units of an MLP head on the pooled features (0: one linear layer)
    n_train: int = 1000              # training images
    n_val: int = 500                 # held-out images
    epochs: int = 8
    lr: float = 0.03                 # a high peak: the switch is learned while the rate is high
    batch_size: int = 32

    def build(self) -> nn.Module:
        return TinyCNN(self.attention, num_classes=len(_data.COLOURS), width=self.width, reduction=self.reduction,
                       after=self.after, head_hidden=self.head_hidden)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return _data.context_dataset(n, seed=self._split_seed(split))   # made once per process (data's memo)


@dataclass(frozen=True)
class CueCNN(DemoConfig):
    """TinyCNN on :func:`~attention_lib.toolkit.data.cue_dataset`: three equally bright shapes, the red one is the
    target. Chapters 5 and 6 (and chapter 0's first look at a trained gate) train the same configurations."""
    kind: ClassVar[str] = "cue_cnn"
    attention: Optional[str] = None  # a feature-map mechanism of the registry, or None for the baseline
    width: int = 16                  # channels of the first convolution; the attention block sees 2 * width
    reduction: int = 4               # reduction ratio r (the papers' 16 would leave 2 hidden units of 32)
    size: int = 32                   # image side in pixels
    n_train: int = 600               # training images: every seed of chapters 5 and 6 is above 0.95 with these
    n_val: int = 500                 # held-out images
    epochs: int = 4
    lr: float = 1e-2
    batch_size: int = 16

    def build(self) -> nn.Module:
        return TinyCNN(self.attention, num_classes=len(_data.SHAPE_CLASSES), width=self.width,
                       reduction=self.reduction)

    def data(self, split: str):
        n = self.n_train if split == "train" else self.n_val
        return _data.cue_dataset(n, size=self.size, seed=self._split_seed(split))   # made once per process


@functools.lru_cache(maxsize=4)
def _shared_shapes(n: int, size: int, seed: int) -> _data.ShapesData:
    """``shapes_dataset(n, size, seed)`` made once per process: several demos of one experiment share it."""
    return _data.shapes_dataset(n, size=size, seed=seed)


@dataclass(frozen=True)
class ShapesTokens(DemoConfig):
    """TinyTokenNet on the shapes images: a conv stem's token grid, one block with a token mixer (or none).

    The images come from ``data_seed``, not ``seed``: runs that differ only in ``seed`` (initialisation and
    shuffling) train on the same images, made once per process, so an experiment over several seeds and
    mixers does not pay for the data again and again.
    """
    kind: ClassVar[str] = "shapes_tokens"
    attention: Optional[str] = "external_attention"  # a token mechanism of the registry, or None (no mixing)
    dim: int = 32                    # token width D (the stem's output channels)
    num_heads: int = 2               # heads h, for the mechanisms that have heads
    memory_size: int = 16            # memory slots S, for External Attention
    size: int = 32                   # image side in pixels; the token grid is size/4 x size/4
    n_train: int = 1500              # training images (four mixers x three seeds fit in half a minute)
    n_val: int = 500                 # held-out images
    data_seed: int = 0               # seed of the images (held-out ones: data_seed + 10000)
    epochs: int = 8                  # passes over the training set
    lr: float = 6e-3                 # peak rate: at 3e-3 the one-block models were still far from converged

    def build(self) -> nn.Module:
        return TinyTokenNet(self.attention, num_classes=len(_data.SHAPE_CLASSES), dim=self.dim,
                            image_size=self.size, num_heads=self.num_heads, memory_size=self.memory_size)

    def data(self, split: str):
        self._split_seed(split)                                    # checks the split's name
        n, seed = (self.n_train, self.data_seed) if split == "train" else (self.n_val, self.data_seed + 10_000)
        return _shared_shapes(n, self.size, seed)


#: The demos of the toolkit, by name: ``trained_demo("shapes_cnn", attention="cbam")``.
DEMOS: Dict[str, type] = {cls.kind: cls for cls in (ShapesCNN, Reversal, ShapesViT, ShapesTokens, ContextCNN,
                                                      CueCNN)}


class Demo(NamedTuple):
    """A trained demo: ``model`` (eval mode), its training ``history``, the full ``config``, whether it
    came ``from_cache``, the cache file ``path``, and the held-out ``val_data`` it was checked on."""
    model: nn.Module
    history: History
    config: DemoConfig
    from_cache: bool
    path: Path
    val_data: tuple


def demo_config(kind: Union[str, DemoConfig], **config) -> DemoConfig:
    """The full configuration: a demo's name and settings (``"shapes_cnn", attention="eca"``), or a
    configuration with some settings changed. Unknown demos and settings are a ``ValueError``."""
    if isinstance(kind, DemoConfig):
        return kind.replace(**config) if config else kind
    if kind not in DEMOS:
        raise ValueError(f"unknown demo {kind!r}; expected one of {sorted(DEMOS)} or a DemoConfig")
    return DEMOS[kind]().replace(**config)


def demo_key(kind: str, config: dict, architecture: str = "", code: str = "") -> str:
    """The cache key: a hash of the demo, its full configuration, the library and torch versions, the model's
    ``repr`` (so that a changed architecture retrains even before the version changes) and ``code``, a digest of
    the source that makes the data and trains the model (:func:`code_digest`)."""
    from .. import __version__

    torch_version = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    blob = json.dumps({"kind": kind, "config": config, "attention_lib": __version__, "torch": torch_version,
                       "format": _FORMAT, "architecture": architecture, "code": code}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


_LIBRARY = Path(__file__).resolve().parents[1]
_LIBRARY_FIT = fit


@functools.lru_cache(maxsize=None)
def _file_digest(path: str, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_digest(config: "DemoConfig") -> str:
    """A digest of the code a trained demo depends on beyond its configuration and architecture: the training loop
    (:func:`fit`), the toolkit's data and models, the mechanisms, and the demo's own definition (its class for the
    toolkit's demos, the whole module that defines it for a chapter's demos, whose data and model code live beside
    it). A change to any of them trains the demo anew, so a cached model never reports what older code trained."""
    import inspect

    cls = type(config)
    parts = [inspect.getsource(_LIBRARY_FIT)]     # the library's loop, whatever a caller has patched in
    mechanisms = [p for p in _LIBRARY.glob("*.py") if p.name not in ("__init__.py", "registry.py", "grade.py")]
    files = sorted(str(p) for p in mechanisms) + [str(_LIBRARY / "toolkit" / n) for n in ("data.py", "models.py")]
    module_file = inspect.getsourcefile(cls)
    if module_file and Path(module_file).resolve() == Path(__file__).resolve():
        parts.append(inspect.getsource(cls))
    elif module_file:
        files.append(str(Path(module_file).resolve()))
    for f in files:
        parts.append(_file_digest(f, os.stat(f).st_mtime_ns))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


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


def untrained_model(kind: Union[str, DemoConfig], **config) -> nn.Module:
    """The demo's model as initialised before training, in eval mode: the weights :func:`trained_demo` starts from
    (built under ``torch.manual_seed(config.seed)``, the global RNG left as it was), so that "random against
    trained" compares a network with its own starting point, and prints the same numbers in every build."""
    cfg = demo_config(kind, **config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)            # the model's initialisation belongs to the configuration
        return cfg.build().eval()


def _cache_path(cfg: DemoConfig, model: nn.Module) -> Path:
    return cache_dir() / f"{cfg.kind}-{demo_key(cfg.kind, cfg.as_dict(), repr(model), code_digest(cfg))}.pt"


def trained_demo(kind: Union[str, DemoConfig], *, device=None, progress: bool = True, retrain: bool = False,
                 num_threads: Optional[int] = 1, val_every: int = 1, **config) -> Demo:
    """The demo trained with its configuration: loaded from the cache, or trained and saved.

    ``kind`` is a :class:`DemoConfig` (a chapter's own demo) or the name of a toolkit demo in ``DEMOS``;
    ``config`` changes settings: ``trained_demo("shapes_cnn", attention="cbam")``,
    ``trained_demo(MyDemo(), seed=1)``. ``retrain=True`` ignores a cached copy. ``num_threads`` goes to
    :func:`fit`: one CPU thread by default, because the tiny models' operations gain little from a second
    thread, and two threads competing with other work were measured ten times slower than one. The
    model is returned in eval mode on ``device`` (default: the best available). ``val_every`` goes to
    :func:`fit` (``val_every=cfg.epochs``: validate once, after training); it is not part of the cache key, so
    a loaded history holds the validations of whoever trained the demo, always including the last epoch.
    """
    cfg = demo_config(kind, **config)
    kind = cfg.kind
    settings = cfg.as_dict()
    device = _best_device() if device is None else torch.device(device)
    val_data = cfg.data("val")                 # the training set is only made when training

    def build() -> nn.Module:
        return untrained_model(cfg).train()

    model = build()
    path = _cache_path(cfg, model)
    if path.exists() and not retrain:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("kind") == kind and saved.get("config") == settings:
                model.load_state_dict(saved["state_dict"])
                return Demo(model.to(device).eval(), saved["history"], cfg, True, path, val_data)
        except Exception:                      # unreadable or stale file: train again and overwrite it
            model = build()                    # a failed load may have overwritten some weights

    status = _Status(t("train.status", name=kind, seed=cfg.seed, epochs=cfg.epochs))
    try:
        history = fit(model, cfg.data("train"), epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                      seed=cfg.seed, device=device, progress=progress, val_data=val_data, num_threads=num_threads,
                      desc=t("train.progress", name=kind), val_every=val_every)
    finally:
        status.close()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _save(path, {"kind": kind, "config": settings, "history": history, "state_dict": state, "format": _FORMAT})
    return Demo(model.eval(), history, cfg, False, path, val_data)


# ------------------------------------------------------------------------- several demos, on every CPU core

def _train_in_worker(cfg: DemoConfig, cache: str, num_threads: Optional[int], val_every: int) -> None:
    """Runs in a fresh process: train one demo on the CPU into the cache (the parent loads it from there)."""
    set_cache_dir(cache)
    trained_demo(cfg, device="cpu", progress=False, num_threads=num_threads, val_every=val_every)


def default_workers() -> int:
    """Processes :func:`trained_demos` trains in: ``$ATTENTION_LIB_WORKERS``, else the CPU cores this process may
    use, at most 4 (the tiny demos train on one thread each)."""
    env = os.environ.get("ATTENTION_LIB_WORKERS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"ATTENTION_LIB_WORKERS must be a whole number of processes, got {env!r}") from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def _demo_names(configs: list) -> str:
    """``"shapes_cnn seeds 0-2, ch04_sknet seed 1"``: the kinds of ``configs`` in order, each with its seeds."""
    seeds: dict = {}
    for c in configs:
        seeds.setdefault(c.kind, []).append(c.seed)
    return ", ".join(f"{kind} {t('train.seeds', seeds=', '.join(map(str, s)))}" for kind, s in seeds.items())


def trained_demos(configs, *, device=None, progress: bool = True, retrain: bool = False,
                  num_threads: Optional[int] = 1, val_every: int = 1, workers: Optional[int] = None) -> list:
    """:func:`trained_demo` for each configuration in ``configs``, in order; the ones not in the cache are trained
    side by side in ``workers`` fresh processes (default :func:`default_workers`) when they train on the CPU.

    Each process trains one demo at a time on ``num_threads`` threads (one by default), so a demo's weights are
    bitwise the same as when :func:`trained_demo` trains it alone: only the wall time changes (about halved on
    two cores for an experiment of several seeds). On a GPU, or with one worker or one demo to train, they are
    trained here one after another. A failed worker process falls back to training here."""
    configs = [demo_config(c) for c in configs]
    device = _best_device() if device is None else torch.device(device)
    workers = default_workers() if workers is None else int(workers)
    check_positive(workers, "workers", "trained_demos")
    paths = {}                                   # cache file -> config: each configuration once
    for c in configs:
        paths.setdefault(_cache_path(c, untrained_model(c)), c)
    missing = [c for path, c in paths.items() if retrain or not path.exists()]
    if device.type == "cpu" and workers > 1 and len(missing) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        processes = min(workers, len(missing))
        # the cell's only sign of life while the workers train (the workers, not Jupyter kernels, show nothing)
        status = _Status(t("train.status_many", n=len(missing), workers=processes,
                           names=_demo_names(missing)))
        try:
            # spawn: a fresh interpreter, never a fork of a process whose torch threads are running
            with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
                jobs = [pool.submit(_train_in_worker, c, str(cache_dir()), num_threads, val_every) for c in missing]
                for job in jobs:
                    job.result()
            retrain = False                      # everything is in the cache now
        except Exception:                        # a broken worker: train what is left here, one by one
            pass
        finally:
            status.close()
    return [trained_demo(c, device=device, progress=progress, retrain=retrain and c in missing,
                         num_threads=num_threads, val_every=val_every) for c in configs]

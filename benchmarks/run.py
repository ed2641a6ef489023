"""Benchmark suite: every mechanism of attention_lib against the baselines a reader would write.

    .venv/bin/python -m benchmarks.run            # full run (a few minutes on 2 CPU cores)
    .venv/bin/python -m benchmarks.run --quick    # smoke run at tiny sizes
    .venv/bin/python -m benchmarks.run --explorers    # every explorer's live update time, at every setting

Timing: inference under ``torch.inference_mode()``, on 2 threads by default. The module and its
baselines run in one process, interleaved round by round, so that load on a shared machine hits
them alike; a case's ratio is the median over rounds of (ours / baseline) within a round, and
the table also shows each side's median time. On CUDA every call is synchronised.
Memory: the extra peak RSS of one call of our module, each case measured in a fresh subprocess
(on CUDA: the extra peak of ``torch.cuda.max_memory_allocated``). A scaling section shows how
memory grows with the token count N, with the slope fitted on log-log axes.

The baselines are written here from the plain equations and PyTorch's built-ins, sharing the
module's weights where the formulation allows; they are what the targets of issue 5 name.
Results go to ``benchmarks/results.json`` (git-ignored). ``--steady-allocator`` keeps freed
memory in the process (glibc), so large temporaries cost their compute only, not page faults.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import attention_lib as al
from attention_lib.toolkit.format import fit_slope

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "benchmarks" / "results.json"


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sizes:
    batch: int = 8
    channels: int = 64
    height: int = 56
    width: int = 56
    dim: int = 64
    heads: int = 8
    tokens: tuple = (784, 3136)
    scaling_tokens: tuple = (784, 1568, 3136)
    explicit_max_tokens: int = 3136      # the explicit (B, h, N, N) path: 2.4 GB at N = 3136


FULL = Sizes()
QUICK = Sizes(batch=2, channels=16, height=12, width=10, dim=32, heads=4, tokens=(49, 120),
              scaling_tokens=(64, 128, 256), explicit_max_tokens=256)


# --------------------------------------------------------------------------------------------
# Baselines, from the plain equations
# --------------------------------------------------------------------------------------------

def sdpa_baseline(m: al.MultiHeadSelfAttention):
    """Fused qkv Linear + F.scaled_dot_product_attention + output Linear."""
    def run(x):
        B, N, D = x.shape
        qkv = F.linear(x, m.qkv.weight, m.qkv.bias).view(B, N, 3, m.num_heads, D // m.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                                    # 3 x (B, h, N, d)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, D)
        return F.linear(y, m.proj.weight, m.proj.bias)
    return run


def torch_mha(m: al.MultiHeadSelfAttention, batch_first: bool):
    """torch.nn.MultiheadAttention holding the module's weights, called with need_weights=False."""
    mha = nn.MultiheadAttention(m.dim, m.num_heads, bias=True, batch_first=batch_first)
    mha = mha.to(m.proj.weight.device).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(m.qkv.weight)
        mha.in_proj_bias.copy_(m.qkv.bias if m.qkv.bias is not None else torch.zeros_like(mha.in_proj_bias))
        mha.out_proj.weight.copy_(m.proj.weight)
        mha.out_proj.bias.copy_(m.proj.bias)
    if batch_first:
        return lambda x: mha(x, x, x, need_weights=False)[0]

    def seq_first(x):
        xt = x.transpose(0, 1)                                                 # (N, B, D)
        return mha(xt, xt, xt, need_weights=False)[0].transpose(0, 1)
    return seq_first


def eanet_einsum(m: al.MultiHeadExternalAttention):
    """The official EANet layer, vectorised: one einsum path over all heads, A built in full."""
    def run(x):
        B, N, _ = x.shape
        t = F.linear(x, m.trans_dims.weight, m.trans_dims.bias).view(B, N, m.num_heads, m.head_dim)
        attn = torch.einsum("bnhd,sd->bhns", t, m.M_k.weight) + m.M_k.bias             # (B, H, N, S)
        attn = attn.softmax(dim=-2)                                           # over the tokens
        attn = attn / (1e-9 + attn.sum(dim=-1, keepdim=True))                 # over the slots
        y = torch.einsum("bhns,ds->bnhd", attn, m.M_v.weight) + m.M_v.bias     # (B, N, H, d)
        return F.linear(y.reshape(B, N, -1), m.proj.weight, m.proj.bias)
    return run


def external_plain(m: al.ExternalAttention):
    def run(x):
        attn = F.linear(x, m.M_k.weight).softmax(dim=1)                       # (B, N, S)
        attn = attn / (1e-9 + attn.sum(dim=2, keepdim=True))
        return F.linear(attn, m.M_v.weight)
    return run


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def sk_straightforward(m: al.SelectiveKernel):
    """Every branch's conv-BN-ReLU, stacked to (B, K, C, H, W), summed, broadcast-multiplied."""
    def run(x):
        B, C = x.shape[:2]
        feats = torch.stack([branch(x) for branch in m.branches], dim=1)       # (B, K, C, H, W)
        s = feats.sum(dim=1).mean((2, 3))                                       # (B, C)
        z = m.fuse(s)
        a = m.select(z).view(B, len(m.branches), C).softmax(dim=1)             # (B, K, C)
        return (feats * a[..., None, None]).sum(dim=1)
    return run


class _SeedChannelAttention(nn.Module):
    def __init__(self, mlp):
        super().__init__()
        self.avg, self.max, self.mlp = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1), mlp

    def forward(self, x):
        B, C = x.shape[:2]
        avg_out = self.mlp(self.avg(x).view(B, C))                            # one MLP call ...
        max_out = self.mlp(self.max(x).view(B, C))                            # ... and another
        return torch.sigmoid(avg_out + max_out).view(B, C, 1, 1)


def cbam_straightforward(m: al.CBAM):
    """Separate pooled MLP calls, concatenation, k x k conv, and the seed's extra residual."""
    ca = _SeedChannelAttention(m.channel_gate.mlp)
    sg = m.spatial_gate

    def run(x):
        out = x * ca(x)
        avg_out = torch.mean(out, dim=1, keepdim=True)
        max_out, _ = torch.max(out, dim=1, keepdim=True)
        sa = torch.sigmoid(sg.norm(sg.conv(torch.cat([avg_out, max_out], dim=1))))
        out = out * sa
        return out + x                                                         # the extra residual
    return run


def multiply_floor(x, channels):
    s = torch.rand(x.shape[0], channels, 1, 1, device=x.device, dtype=x.dtype)
    return lambda x: x * s


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

@dataclass
class Case:
    module: str
    config: str
    make: Callable[[Sizes, torch.device], tuple]   # -> (ours, {baseline: fn}, input)
    targets: dict = field(default_factory=dict)    # baseline name -> max ratio
    memory_target_mib: float | None = None         # max extra peak memory of one call
    budget_scale: float = 1.0                      # slow cases get more time, so that they get enough rounds
    key: str = ""


def _fmap(sz: Sizes, device, channels_last=False):
    x = torch.randn(sz.batch, sz.channels, sz.height, sz.width, device=device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _tokens(sz: Sizes, n, device):
    return torch.randn(sz.batch, n, sz.dim, device=device)


def _randomise_bn(module):
    """Non-trivial BatchNorm statistics, so that folding or skipping one would show."""
    g = torch.Generator().manual_seed(0)
    for bn in module.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                n = bn.num_features
                bn.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
                bn.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return module


def build_cases(sz: Sizes) -> list[Case]:
    cases = []
    for i, n in enumerate(sz.tokens):
        def mhsa(sz, device, n=n, i=i):
            m = al.MultiHeadSelfAttention(sz.dim, sz.heads, qkv_bias=True).to(device).eval()
            baselines = {"qkv+SDPA+proj": sdpa_baseline(m),
                         "nn.MultiheadAttention": torch_mha(m, batch_first=True)}   # (B, N, D) input: batch_first
            if i == 0:   # for reference: the sequence-first layout skips PyTorch's fast path (and its copies)
                baselines["nn.MultiheadAttention (seq-first)"] = torch_mha(m, batch_first=False)
            return m, baselines, _tokens(sz, n, device)
        cases.append(Case("MultiHeadSelfAttention", f"N={n}", mhsa,
                          {"qkv+SDPA+proj": 1.15, "nn.MultiheadAttention": 0.6},
                          memory_target_mib=50.0 if i == len(sz.tokens) - 1 else None,
                          budget_scale=1.0 if i == 0 else 3.0))
    for n, target in zip(sz.tokens, (0.8, 0.5)):
        def mhea(sz, device, n=n):
            m = al.MultiHeadExternalAttention(sz.dim, sz.heads).to(device).eval()
            return m, {"EANet einsum": eanet_einsum(m)}, _tokens(sz, n, device)
        cases.append(Case("MultiHeadExternalAttention", f"N={n}", mhea, {"EANet einsum": target}))

    def sk35(sz, device):
        m = _randomise_bn(al.SelectiveKernel(sz.channels, (3, 5))).to(device).eval()
        plain = _randomise_bn(al.SelectiveKernel(sz.channels, (3, 5), dilated=False)).to(device).eval()
        return m, {"straightforward, true kxk": sk_straightforward(plain),
                   "straightforward, same convs": sk_straightforward(m)}, _fmap(sz, device)
    cases.append(Case("SelectiveKernel", "k=(3,5), groups=1", sk35, {"straightforward, true kxk": 0.7}))

    def sk357(sz, device):
        c = sz.channels
        m = _randomise_bn(al.SelectiveKernel(c, (3, 5, 7), groups=c)).to(device).eval()
        plain = _randomise_bn(al.SelectiveKernel(c, (3, 5, 7), groups=c, dilated=False)).to(device).eval()
        return m, {"straightforward, true kxk": sk_straightforward(plain),
                   "straightforward, same convs": sk_straightforward(m)}, _fmap(sz, device)
    cases.append(Case("SelectiveKernel", "k=(3,5,7), depthwise", sk357, {"straightforward, true kxk": 0.5}))

    def sk357_cl(sz, device):     # the same, in a channels_last network: no layout copies for either side
        m, baselines, x = sk357(sz, device)
        return m, baselines, x.contiguous(memory_format=torch.channels_last)
    cases.append(Case("SelectiveKernel", "k=(3,5,7), depthwise, channels_last input", sk357_cl))

    def cbam(sz, device):
        m = _randomise_bn(al.CBAM(sz.channels)).to(device).eval()
        return m, {"straightforward": cbam_straightforward(m)}, _fmap(sz, device)
    cases.append(Case("CBAM", "r=16, k=7", cbam, {"straightforward": 0.6}))

    def se(sz, device):
        m = al.SqueezeExcitation(sz.channels).to(device).eval()
        x = _fmap(sz, device)
        return m, {"x * s": multiply_floor(x, sz.channels)}, x
    cases.append(Case("SqueezeExcitation", "r=16", se, {"x * s": 2.5}))

    def eca(sz, device):
        m = al.EfficientChannelAttention(sz.channels).to(device).eval()
        x = _fmap(sz, device)
        return m, {"x * s": multiply_floor(x, sz.channels)}, x
    cases.append(Case("EfficientChannelAttention", "k=psi(C)", eca, {"x * s": 2.5}))

    def bam(sz, device):
        m = _randomise_bn(al.BAM(sz.channels)).to(device).eval()
        x = _fmap(sz, device)
        return m, {"x * s": multiply_floor(x, sz.channels)}, x
    cases.append(Case("BAM", "r=16, dilation=4", bam, {}))

    for c in cases:
        c.key = f"{c.module}[{c.config}]"
    return cases


def scaling_cases(sz: Sizes) -> list[tuple[str, int, Callable]]:
    """(path, N, make) for the memory-versus-N section; make(sz, device) -> (fn, x)."""
    out = []
    for n in sz.scaling_tokens:
        def sdpa(sz, device, n=n):
            m = al.MultiHeadSelfAttention(sz.dim, sz.heads).to(device).eval()
            return m, _tokens(sz, n, device)
        out.append(("MultiHeadSelfAttention (SDPA forward)", n, sdpa))
        if n <= sz.explicit_max_tokens:
            def explicit(sz, device, n=n):
                m = al.MultiHeadSelfAttention(sz.dim, sz.heads).to(device).eval()
                return m.forward_explicit, _tokens(sz, n, device)
            out.append(("MultiHeadSelfAttention (explicit weights)", n, explicit))
        def mhea(sz, device, n=n):
            m = al.MultiHeadExternalAttention(sz.dim, sz.heads).to(device).eval()
            return m, _tokens(sz, n, device)
        out.append(("MultiHeadExternalAttention", n, mhea))
        def ea(sz, device, n=n):
            m = al.ExternalAttention(sz.dim).to(device).eval()
            return m, _tokens(sz, n, device)
        out.append(("ExternalAttention", n, ea))
    return out


# --------------------------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------------------------

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(fns: dict, x, device, rounds: int, min_sample_s: float, budget_s: float):
    """Median seconds per call of each fn and the per-round ratios to 'ours', interleaved."""
    with torch.inference_mode():
        single = {}
        for name, fn in fns.items():          # warm-up, and a first estimate of one call
            fn(x)
            _sync(device)
            t0 = time.perf_counter()
            fn(x)
            _sync(device)
            single[name] = time.perf_counter() - t0
        inner = {k: max(1, math.ceil(min_sample_s / max(v, 1e-7))) for k, v in single.items()}
        per_round = sum(single[k] * inner[k] for k in fns)
        rounds = max(3, min(rounds, int(budget_s / max(per_round, 1e-9))))
        samples = {k: [] for k in fns}
        for r in range(rounds):
            order = list(fns) if r % 2 == 0 else list(reversed(fns))   # no name always runs first
            for name in order:
                fn, n = fns[name], inner[name]
                _sync(device)
                t0 = time.perf_counter()
                for _ in range(n):
                    fn(x)
                _sync(device)
                samples[name].append((time.perf_counter() - t0) / n)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    ratios = {k: statistics.median(o / b for o, b in zip(samples["ours"], samples[k]))
              for k in fns if k != "ours"}
    return medians, ratios, rounds


def _rss_now_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _memory_child(kind: str, index: int, quick: bool, threads: int) -> None:
    """Runs in a fresh interpreter: extra peak RSS (MiB) of one call, printed as JSON.

    A first call on one sample loads the kernels and lazy buffers; the parent process fixed
    glibc's mmap threshold, so the memory that call freed goes back to the system. A sampling
    thread then records RSS during the measured call (torch releases the GIL inside its ops).
    """
    import threading
    torch.set_num_threads(threads)
    sz = QUICK if quick else FULL
    device = torch.device("cpu")
    torch.manual_seed(0)
    if kind == "case":
        fn, _, x = build_cases(sz)[index].make(sz, device)
    else:
        fn, x = scaling_cases(sz)[index][2](sz, device)
    with torch.inference_mode():
        fn(x[:1])                               # warm-up: kernels, thread pool, lazy buffers
        peak, stop = [0], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], _rss_now_kib())
                time.sleep(0.0002)

        before = _rss_now_kib()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(0.005)
        y = fn(x)
        peak[0] = max(peak[0], _rss_now_kib())
        stop.set()
        sampler.join()
    del y
    print(json.dumps({"extra_mib": max(0, peak[0] - before) / 1024}))


def memory_cpu(kind: str, index: int, quick: bool, threads: int) -> float | None:
    cmd = [sys.executable, "-m", "benchmarks.run", "--memory-child", kind, str(index), "--threads", str(threads)]
    if quick:
        cmd.append("--quick")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "131072"}
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    if res.returncode != 0:
        print(f"  memory measurement failed ({kind} {index}): {res.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])["extra_mib"]


def memory_cuda(fn, x, device) -> float:
    with torch.inference_mode():
        fn(x)
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn(x)
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

def run_device(device, sz, args, memory: bool):
    rows = []
    cases = build_cases(sz)
    for i, case in enumerate(cases):
        if args.only and args.only.lower() not in case.key.lower():
            continue
        torch.manual_seed(0)
        ours, baselines, x = case.make(sz, device)
        fns = {"ours": ours, **baselines}
        med, ratios, rounds = time_interleaved(fns, x, device, args.rounds, args.min_sample,
                                               args.case_budget * case.budget_scale)
        mem = None
        if memory:
            mem = memory_cpu("case", i, args.quick, args.threads) if device.type == "cpu" \
                else memory_cuda(ours, x, device)
        for name in baselines:
            target = case.targets.get(name)
            rows.append({
                "module": case.module, "config": case.config, "device": device.type, "baseline": name,
                "ours_ms": med["ours"] * 1e3, "baseline_ms": med[name] * 1e3, "ratio": ratios[name],
                "target": target, "met": None if target is None else ratios[name] <= target,
                "rounds": rounds, "peak_extra_mib": mem, "memory_target_mib": case.memory_target_mib,
                "memory_met": None if case.memory_target_mib is None or mem is None
                else mem < case.memory_target_mib,
            })
        print(f"  {case.key:<58} done ({rounds} rounds)", file=sys.stderr, flush=True)
        del ours, baselines, x, fns
    return rows


def run_scaling(device, sz, args):
    out = []
    for i, (path, n, make) in enumerate(scaling_cases(sz)):
        if device.type == "cpu":
            mib = memory_cpu("scaling", i, args.quick, args.threads)
        else:
            fn, x = make(sz, device)
            mib = memory_cuda(fn, x, device)
        out.append({"path": path, "N": n, "device": device.type, "peak_extra_mib": mib})
    by_path = {}
    for r in out:
        by_path.setdefault((r["path"], r["device"]), []).append(r)
    slopes = [{"path": p, "device": d, "slope": fit_slope([r["N"] for r in rs], [r["peak_extra_mib"] for r in rs])}
              for (p, d), rs in by_path.items()]
    return out, slopes


def format_table(rows, scaling, slopes) -> str:
    head = ["module", "config", "dev", "baseline", "ours ms", "base ms", "ratio", "target", "peak MiB"]
    body = []
    for r in rows:
        tgt = "-" if r["target"] is None else f"<={r['target']:.2f} {'met' if r['met'] else 'MISSED'}"
        mem = "-" if r["peak_extra_mib"] is None else f"{r['peak_extra_mib']:.1f}"
        if r["memory_target_mib"] is not None and r["peak_extra_mib"] is not None:
            mem += f" (<{r['memory_target_mib']:.0f} {'met' if r['memory_met'] else 'MISSED'})"
        body.append([r["module"], r["config"], r["device"], r["baseline"], f"{r['ours_ms']:.2f}",
                     f"{r['baseline_ms']:.2f}", f"{r['ratio']:.2f}", tgt, mem])
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(b) for b in body]
    if scaling:
        out.append("")
        out.append("Extra peak memory of one call (MiB) as N grows, and the log-log slope:")
        ns = sorted({r["N"] for r in scaling})
        paths = list(dict.fromkeys((r["path"], r["device"]) for r in scaling))
        head2 = ["path", "dev"] + [f"N={n}" for n in ns] + ["slope"]
        body2 = []
        for p, d in paths:
            vals = {r["N"]: r["peak_extra_mib"] for r in scaling if r["path"] == p and r["device"] == d}
            slope = next(s["slope"] for s in slopes if s["path"] == p and s["device"] == d)
            body2.append([p, d] + [("-" if vals.get(n) is None else f"{vals[n]:.1f}") for n in ns]
                         + [f"{slope:.2f}"])
        widths2 = [max(len(str(c)) for c in col) for col in zip(head2, *body2)]
        line2 = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths2)) + " |"
        out += [line2(head2), "|" + "|".join("-" * (w + 2) for w in widths2) + "|"] + [line2(b) for b in body2]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Import time: what a training script pays for `import attention_lib`
# --------------------------------------------------------------------------------------------

IMPORT_TARGET = 1.15        # the package may cost at most 15 % more than torch itself


def import_times(rounds: int) -> dict:
    """Median wall time of a fresh interpreter running ``import torch``, and ``import torch, attention_lib``
    plus building one mechanism, interleaved ``rounds`` times (the interpreter's start is in both)."""
    scripts = {"torch": "import torch",
               "torch + attention_lib": "import torch, attention_lib; attention_lib.SqueezeExcitation(64)"}
    times = {name: [] for name in scripts}
    for _ in range(rounds):
        for name, code in scripts.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(v) for name, v in times.items()}
    return {"torch_s": medians["torch"], "attention_lib_s": medians["torch + attention_lib"],
            "ratio": medians["torch + attention_lib"] / medians["torch"], "target": IMPORT_TARGET, "rounds": rounds}


def format_import(result: dict) -> str:
    met = "met" if result["ratio"] <= result["target"] else "MISSED"
    return (f"\nimport time (fresh interpreter, median of {result['rounds']}): torch {result['torch_s']:.2f} s, "
            f"torch + attention_lib {result['attention_lib_s']:.2f} s, ratio {result['ratio']:.3f} "
            f"(<={result['target']:.2f} {met})")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes and few rounds: a smoke run")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 2; 1 with --quick)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per case (at most)")
    p.add_argument("--case-budget", type=float, default=None, help="seconds of timing per case (rounds shrink to fit)")
    p.add_argument("--min-sample", type=float, default=None, help="seconds per timing sample (calls are repeated)")
    p.add_argument("--no-memory", action="store_true", help="skip the subprocess memory measurements")
    p.add_argument("--steady-allocator", action="store_true",
                   help="glibc: keep freed memory so large temporaries reuse warm pages (compute cost only)")
    p.add_argument("--only", default="", help="run only cases whose name contains this text")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: CPU, and CUDA too when present")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"output file (default {DEFAULT_JSON.relative_to(ROOT)})")
    p.add_argument("--import-time", action="store_true", help="only measure the import time of the package")
    p.add_argument("--explorers", action="store_true",
                   help="only time the explorers' live updates at every setting (medians and worst against 100/200 ms)")
    p.add_argument("--explorer-runs", type=int, default=1, help="with --explorers: runs per explorer, the best kept")
    p.add_argument("--memory-child", nargs=2, metavar=("KIND", "INDEX"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads is None:
        args.threads = 1 if args.quick else 2
    if args.rounds is None:
        args.rounds = 3 if args.quick else 9
    if args.case_budget is None:
        args.case_budget = 1.0 if args.quick else 12.0
    if args.min_sample is None:
        args.min_sample = 0.002 if args.quick else 0.05
    return args


def _steady_allocator() -> bool:
    """glibc only: serve allocations below 256 MiB from the heap and keep freed memory, so that a
    call's large temporaries reuse warm pages instead of faulting fresh ones in. By default the
    suite leaves glibc alone (what a user sees), where an allocation-heavy baseline can swing by 2x
    between runs as glibc's adaptive thresholds return its temporaries to the system or keep them."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 256 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        _memory_child(args.memory_child[0], int(args.memory_child[1]), args.quick, args.threads)
        return {}
    if args.import_time:
        result = import_times(args.rounds)
        print(format_import(result).strip())
        return {"import": result}
    if args.explorers:
        from benchmarks import explorers
        rows = explorers.run(repeats=3 if args.quick else 10, only=args.only, runs=args.explorer_runs)
        out = args.json.with_name(args.json.stem + "-explorers.json")
        out.write_text(json.dumps({"threads": args.threads, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                                   "rows": rows}, indent=2, default=str))
        print(explorers.format_table(rows))
        print(f"written to {out}", file=sys.stderr)
        return {"explorers": rows}
    sz = QUICK if args.quick else FULL
    steady = _steady_allocator() if args.steady_allocator else False
    devices = [torch.device("cpu")]
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices = ([] if args.device == "cuda" else devices) + [torch.device("cuda")]
    t0 = time.perf_counter()
    rows, scaling, slopes = [], [], []
    for device in devices:
        print(f"timing on {device} ({args.threads} threads)", file=sys.stderr, flush=True)
        rows += run_device(device, sz, args, memory=not args.no_memory)
        if not args.no_memory and not args.only:
            s, sl = run_scaling(device, sz, args)
            scaling += s
            slopes += sl
    result = {
        "meta": {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
                 "processor": platform.processor(), "threads": args.threads, "quick": args.quick,
                 "sizes": {k: v for k, v in sz.__dict__.items()},
                 "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                 "steady_allocator": steady,
                 "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": time.perf_counter() - t0},
        "rows": rows, "memory_scaling": scaling, "memory_slopes": slopes,
        "import": import_times(args.rounds),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(format_table(rows, scaling, slopes))
    print(format_import(result["import"]))
    print(f"\n{len(rows)} rows in {result['meta']['seconds']:.0f} s; written to {args.json}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Tessera on cuda:0 vs PyTorch eager and torch.compile (issue 8, item 5).

Written for the H100 machine (no network; run with /opt/torch/.venv/bin/python,
PyTorch 2.11). NOT RUN YET: it was written on a machine without a GPU.

Workloads (models defined here, random weights, so nothing is downloaded):
  resnet50   b1, b64        (3x224x224)
  bert_base  b1, b32, s128  (12 layers, hidden 768, 12 heads, FFN 3072)
  gpt2_small b8, s1024      (12 layers, hidden 768, 12 heads, causal)
  gemm       M=N=K in 1024, 4096, 8192 (Tessera MatMul vs torch.matmul)
Precisions: fp32 (TF32 off), tf32, bf16.

Each model is exported once to ONNX (torch.onnx.export, opset 17) and run by
`tessera bench --device cuda:0,cpu --json`; PyTorch runs the same module
eagerly and through torch.compile (default mode and "reduce-overhead", i.e.
CUDA graphs), timed with CUDA events after warm-up. Reported per variant:
median and p10/p90 latency in ms over --iters runs, in the same process run.
Note: Tessera's latency includes copying inputs to and outputs from the GPU
(its session takes host tensors); the "torch eager +h2d/d2h" column does the
same for a like-for-like comparison.

usage: bench_gpu.py --tessera build-gpu/bin/tessera [--out bench/results/gpu.json]
                    [--only resnet50,gemm] [--precisions fp32,tf32,bf16] [--iters 50]
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- models -------------------------------------------------------------------------------

class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            for i in range(blocks):
                layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Block(nn.Module):
    """Pre-LN (GPT-2) or post-LN (BERT) transformer block with SDPA attention."""

    def __init__(self, d, heads, ffn, causal, pre_ln):
        super().__init__()
        self.h, self.causal, self.pre_ln = heads, causal, pre_ln
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

    def attn(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:  # torch < 2.0
            a = (q @ k.transpose(-1, -2)) / (q.shape[-1] ** 0.5)
            if self.causal:
                a = a.masked_fill(torch.ones(s, s, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            y = a.softmax(-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, s, d))

    def forward(self, x):
        if self.pre_ln:
            x = x + self.attn(self.ln1(x))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class Encoder(nn.Module):
    def __init__(self, vocab, seq, d=768, heads=12, ffn=3072, layers=12, causal=False):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList([Block(d, heads, ffn, causal, pre_ln=causal) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)

    def forward(self, ids):
        x = self.tok(ids) + self.pos.weight[: ids.shape[1]]
        for b in self.blocks:
            x = b(x)
        return self.ln(x)


class MatMul(nn.Module):
    def forward(self, a, b):
        return torch.matmul(a, b)


def workloads(only):
    w = []
    if "resnet50" in only:
        for b in (1, 64):
            w.append((f"resnet50_b{b}", ResNet50, lambda b=b: (torch.randn(b, 3, 224, 224),)))
    if "bert_base" in only:
        for b in (1, 32):
            w.append((f"bert_base_b{b}_s128", lambda: Encoder(30522, 128),
                      lambda b=b: (torch.randint(0, 30522, (b, 128)),)))
    if "gpt2_small" in only:
        w.append(("gpt2_small_b8_s1024", lambda: Encoder(50257, 1024, causal=True),
                  lambda: (torch.randint(0, 50257, (8, 1024)),)))
    if "gemm" in only:
        for n in (1024, 4096, 8192):
            w.append((f"gemm_{n}", MatMul, lambda n=n: (torch.randn(n, n), torch.randn(n, n))))
    return w


# ---- timing ---------------------------------------------------------------------------------

def stats(ms):
    a = np.asarray(ms, dtype=np.float64)
    return {"median_ms": float(np.median(a)), "p10_ms": float(np.percentile(a, 10)),
            "p90_ms": float(np.percentile(a, 90)), "min_ms": float(a.min()), "iters": int(a.size)}


def time_cuda(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        out.append(s.elapsed_time(e))
    return stats(out)


def set_precision(p):
    torch.backends.cuda.matmul.allow_tf32 = p == "tf32"
    torch.backends.cudnn.allow_tf32 = p == "tf32"


def bench_torch(name, module, inputs, precision, args):
    res = {}
    dev = torch.device("cuda:0")
    m = module.to(dev).eval()
    x = [t.to(dev) for t in inputs]
    if precision == "bf16":
        m = m.to(torch.bfloat16)
        x = [t.to(torch.bfloat16) if t.is_floating_point() else t for t in x]
    with torch.inference_mode():
        res["torch_eager"] = time_cuda(lambda: m(*x), args.warmup, args.iters)
        host = [t.cpu() for t in x]
        res["torch_eager_h2d_d2h"] = time_cuda(lambda: m(*[t.to(dev, non_blocking=False) for t in host]).cpu(),
                                               args.warmup, args.iters)
        for mode in ("default", "reduce-overhead"):
            try:
                torch._dynamo.reset()
                c = torch.compile(m, mode=mode)
                res[f"torch_compile_{mode}"] = time_cuda(lambda: c(*x), max(args.warmup, 3), args.iters)
            except Exception as e:  # noqa: BLE001 - report, keep going
                res[f"torch_compile_{mode}"] = {"error": f"{type(e).__name__}: {e}"[:300]}
    return res


def export_onnx(module, inputs, path):
    module = module.eval()
    names = [f"input_{i}" for i in range(len(inputs))]
    kwargs = dict(input_names=names, output_names=["output_0"], opset_version=17)
    with torch.no_grad():
        try:
            torch.onnx.export(module, tuple(inputs), path, dynamo=False, **kwargs)  # TorchScript exporter (2.x)
        except TypeError:  # older torch without the dynamo flag
            torch.onnx.export(module, tuple(inputs), path, **kwargs)


def bench_tessera(onnx_path, precision, args, workdir):
    cfg = os.path.join(workdir, f"deploy_{precision}.toml")
    with open(cfg, "w") as f:
        f.write('[inference]\ndevices = ["cuda:0", "cpu"]\n')
        f.write(f'precision = "{"bf16" if precision == "bf16" else "f32"}"\n')
        f.write('[inference.backend.cuda]\n')
        f.write(f'tf32 = "{1 if precision == "tf32" else 0}"\ncuda_graphs = "1"\n')
    cmd = [args.tessera, "bench", onnx_path, "--config", cfg, "--warmup", str(args.warmup), "--iters",
           str(args.iters), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip()[-500:], "cmd": " ".join(cmd)}
    j = json.loads(p.stdout)
    r = stats(j["latencies_ms"])
    r.update({"compile_ms": j.get("compile_ms"), "placement": j.get("placement"),
              "peak_memory_bytes": j.get("peak_memory_bytes")})
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", required=True, help="path to the tessera CLI (built with CUDA)")
    ap.add_argument("--out", default=f"bench/results/gpu_{datetime.date.today().isoformat()}.json")
    ap.add_argument("--only", default="resnet50,bert_base,gpt2_small,gemm")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("SKIP: torch sees no CUDA device")
        return 77
    torch.manual_seed(0)
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "gpu": torch.cuda.get_device_name(0),
              "torch": torch.__version__, "cuda": torch.version.cuda, "iters": args.iters, "warmup": args.warmup,
              "results": []}
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as work:
        for name, make, make_inputs in workloads(only):
            module, inputs = make(), make_inputs()
            onnx_path = os.path.join(work, f"{name}.onnx")
            try:
                export_onnx(module, inputs, onnx_path)
            except Exception as e:  # noqa: BLE001
                onnx_path = None
                print(f"{name}: ONNX export failed: {e}", file=sys.stderr)
            for prec in args.precisions.split(","):
                set_precision(prec)
                row = {"workload": name, "precision": prec}
                row.update(bench_torch(name, module, inputs, prec, args))
                row["tessera"] = bench_tessera(onnx_path, prec, args, work) if onnx_path else {"error": "no ONNX"}
                report["results"].append(row)
                med = {k: v.get("median_ms") for k, v in row.items() if isinstance(v, dict)}
                print(f"{name:24s} {prec:5s} " + "  ".join(f"{k}={v:.3f}" if v else f"{k}=n/a" for k, v in med.items()),
                      flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

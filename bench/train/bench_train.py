#!/usr/bin/env python3
"""Training-step benchmark: Tessera against JAX (jax.jit, XLA CPU) and PyPI
PyTorch (MKL; eager and torch.compile), measured in one run on the same
machine, the same thread count, the same network, initial weights, optimizer
and batches (issue 9, "Done when", benchmark line).

A step is forward + backward + optimizer update with the loss fetched to the
host. Step k of every framework trains on the digits "train" rows
[k*B, k*B + B) (wrapping at the end, like tessera::TakeRows), features
pixel/16. Warm-up steps come first (steps 0..warmup-1), then the timed steps.

The peers are built from the ONNX model itself: its nodes (a chain of Gemm /
MatMul+Add / Conv / BatchNormalization / Relu / MaxPool / Flatten) become
torch modules and jax functions, its initializers their initial weights, so
every framework computes the same thing. The optimizer settings come from the
same TOML config Tessera trains with ([training] table). Each peer runs in
its own subprocess (its own thread pools, pinned to `--threads` cores) and
reports its first-step loss, which must equal Tessera's within --loss-tol
(same weights, same batch), or the comparison is marked invalid.

  .venv-peers/bin/python bench/train/bench_train.py --cli build/bin/tessera
  .venv-peers/bin/python bench/train/bench_train.py --validate   # peers vs torch_ref.json

Outputs bench/results/train_step.json and train_step.md.
"""
import argparse
import datetime
import gzip
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DIGITS_PATHS = [
    os.environ.get("TESSERA_DIGITS", ""),
    "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz",
]
TRAIN_ROWS = 1442  # runtime/datasets.h: the 5th, 10th, ... sample of each class is "test", the rest "train"


# --------------------------------------------------------------------------
# Shared: data, model description, optimizer config, statistics
# --------------------------------------------------------------------------

class BenchError(Exception):
    pass


def load_digits_train(image_shape):
    for p in DIGITS_PATHS:
        if p and os.path.isfile(p):
            with gzip.open(p, "rt") as f:
                a = np.loadtxt(f, delimiter=",", dtype=np.float64)
            seen, test = np.zeros(10, dtype=np.int64), np.zeros(len(a), dtype=bool)
            for i, c in enumerate(a[:, 64].astype(np.int64)):
                test[i] = seen[c] % 5 == 4
                seen[c] += 1
            a = a[~test]
            assert len(a) == TRAIN_ROWS
            x = (a[:, :64] / 16.0).astype(np.float32)
            y = a[:, 64].astype(np.int64)
            if image_shape:
                x = x.reshape(-1, 1, 8, 8)
            return np.ascontiguousarray(x), y
    raise BenchError("digits.csv.gz not found (set TESSERA_DIGITS or install python3-sklearn: scripts/setup.sh)")


def take_rows(a, begin, count):
    idx = (begin + np.arange(count)) % a.shape[0]
    return np.ascontiguousarray(a[idx])


def bench_cycle(rows, batch):
    """How many distinct batches `tessera train --bench-steps` cycles through
    (tools/cli_train.cpp: min(8, max(1, rows / batch)))."""
    return min(8, max(1, rows // batch))


def make_batches(x, y, batch, nsteps, cycle):
    """Step k's batch: rows [j*batch, j*batch + batch) (wrapping) with
    j = k % cycle, or j = k when cycle is 0 (torch_ref.json's schedule)."""
    out = []
    for k in range(nsteps):
        j = k % cycle if cycle else k
        out.append((take_rows(x, j * batch, batch), take_rows(y, j * batch, batch)))
    return out


def onnx_chain(path):
    """The model as a list of layers (dicts), in execution order.

    Accepts a single chain from the first graph input to the first graph
    output; constants (initializers, Constant nodes, Identity of constants)
    are resolved. Any other structure or op is an error naming the node."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    g = m.graph
    const = {t.name: numpy_helper.to_array(t).copy() for t in g.initializer}
    inputs = [i.name for i in g.input if i.name not in const]
    if len(inputs) != 1:
        raise BenchError(f"{path}: expected one data input, got {inputs}")
    cur = inputs[0]
    layers = []

    def attrs(n):
        return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}

    def c(name, node):
        if name not in const:
            raise BenchError(f"{path}: node '{node.name}' ({node.op_type}): input '{name}' is not a constant")
        return np.array(const[name], copy=True)

    pending_matmul = None
    for n in g.node:
        a = attrs(n)
        if n.op_type == "Constant":
            const[n.output[0]] = numpy_helper.to_array(a["value"])
            continue
        if n.op_type == "Identity" and n.input[0] in const:
            const[n.output[0]] = const[n.input[0]]
            continue
        if n.input[0] != cur:
            raise BenchError(f"{path}: node '{n.name}' ({n.op_type}) does not continue the chain (reads "
                             f"'{n.input[0]}', expected '{cur}')")
        op = n.op_type
        if pending_matmul is not None and op != "Add":
            layers.append(pending_matmul)
            pending_matmul = None
        if op == "Gemm":
            if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                raise BenchError(f"{path}: Gemm '{n.name}': only alpha=beta=1, transA=0 supported")
            w = c(n.input[1], n)
            if not a.get("transB", 0):
                w = w.T.copy()
            b = c(n.input[2], n) if len(n.input) > 2 and n.input[2] else np.zeros(w.shape[0], w.dtype)
            layers.append({"op": "linear", "w": w, "b": b, "names": [n.input[1], n.input[2]]})
        elif op == "MatMul":
            w = c(n.input[1], n).T.copy()
            pending_matmul = {"op": "linear", "w": w, "b": np.zeros(w.shape[0], w.dtype), "names": [n.input[1], ""]}
        elif op == "Add" and pending_matmul is not None:
            pending_matmul["b"] = c(n.input[1], n).reshape(-1)
            pending_matmul["names"][1] = n.input[1]
            layers.append(pending_matmul)
            pending_matmul = None
        elif op == "Relu":
            layers.append({"op": "relu"})
        elif op == "Conv":
            w = c(n.input[1], n)
            b = c(n.input[2], n) if len(n.input) > 2 and n.input[2] else np.zeros(w.shape[0], w.dtype)
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if pads[0] != pads[2] or pads[1] != pads[3] or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise BenchError(f"{path}: Conv '{n.name}': only symmetric explicit pads supported")
            layers.append({"op": "conv", "w": w, "b": b, "pads": pads[:2], "strides": list(a.get("strides", [1, 1])),
                           "dilations": list(a.get("dilations", [1, 1])), "group": int(a.get("group", 1)),
                           "names": [n.input[1], n.input[2] if len(n.input) > 2 else ""]})
        elif op == "BatchNormalization":
            layers.append({"op": "bn", "scale": c(n.input[1], n), "bias": c(n.input[2], n),
                           "mean": c(n.input[3], n), "var": c(n.input[4], n),
                           "eps": float(a.get("epsilon", 1e-5)), "momentum": float(a.get("momentum", 0.9)),
                           "names": [n.input[1], n.input[2]]})
        elif op == "MaxPool":
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if any(pads) or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
                raise BenchError(f"{path}: MaxPool '{n.name}': only unpadded, floor-mode pooling supported")
            k = list(a["kernel_shape"])
            layers.append({"op": "maxpool", "kernel": k, "strides": list(a.get("strides", k))})
        elif op == "Flatten":
            if a.get("axis", 1) != 1:
                raise BenchError(f"{path}: Flatten '{n.name}': only axis=1 supported")
            layers.append({"op": "flatten"})
        elif op == "Reshape":
            shape = c(n.input[1], n).reshape(-1)
            if len(shape) != 2:
                raise BenchError(f"{path}: Reshape '{n.name}': only a reshape to 2-D (flatten) supported")
            layers.append({"op": "flatten"})
        elif op in ("Dropout", "Identity"):
            pass
        else:
            raise BenchError(f"{path}: node '{n.name}': op {op} not supported by the benchmark's peer builder")
        cur = n.output[0]
    if pending_matmul is not None:
        layers.append(pending_matmul)
    if cur != g.output[0].name:
        raise BenchError(f"{path}: the chain ends at '{cur}', not at the output '{g.output[0].name}'")
    return layers


def read_toml(path):
    try:
        import tomllib  # Python >= 3.11
    except ImportError as e:
        raise BenchError(f"reading {path} needs Python >= 3.11 (tomllib)") from e

    with open(path, "rb") as f:
        return tomllib.load(f)


def optimizer_config(config_path, ref_path):
    """Optimizer settings: the [training] table of the TOML config Tessera
    uses (the source of truth); without a config, torch_ref.json's
    "optimizer". Keys and defaults as compiler/autodiff/optimizer.h."""
    src = None
    t = {}
    if config_path and os.path.isfile(config_path):
        t = dict(read_toml(config_path).get("training", {}))
        src = config_path
    elif ref_path and os.path.isfile(ref_path):
        with open(ref_path) as f:
            ref = json.load(f)
        t = dict(ref.get("optimizer", {}))
        if "lr" not in t and "lr" in ref:
            t["lr"] = ref["lr"]
        src = ref_path
    else:
        raise BenchError(f"no optimizer settings: neither {config_path} nor {ref_path} exists")
    kind = str(t.get("optimizer", t.get("kind", t.get("name", "sgd")))).lower()
    cfg = {
        "kind": "adamw" if kind in ("adam", "adamw") else kind,
        "lr": float(t.get("lr", 1e-3)),
        "momentum": float(t.get("momentum", 0.0)),
        "dampening": float(t.get("dampening", 0.0)),
        "nesterov": bool(t.get("nesterov", False)),
        "beta1": float(t.get("beta1", (t.get("betas") or [0.9, 0.999])[0])),
        "beta2": float(t.get("beta2", (t.get("betas") or [0.9, 0.999])[1])),
        "epsilon": float(t.get("epsilon", t.get("eps", 1e-8))),
        "weight_decay": float(t.get("weight_decay", 0.0)) if kind != "adam" else 0.0,
        "grad_clip": float(t.get("grad_clip", 0.0) or 0.0),
        "label_smoothing": float(t.get("label_smoothing", 0.0) or 0.0),
        "source": src,
    }
    loss = t.get("loss", "cross_entropy")
    if isinstance(loss, dict):
        cfg["label_smoothing"] = float(loss.get("label_smoothing", cfg["label_smoothing"]))
        loss = loss.get("kind", "cross_entropy")
    if loss != "cross_entropy":
        raise BenchError(f"{src}: loss '{loss}' not supported by the benchmark's peers (cross_entropy only)")
    if cfg["kind"] not in ("sgd", "adamw"):
        raise BenchError(f"{src}: optimizer '{kind}' not supported (sgd | adam | adamw)")
    if int(t.get("warmup_steps", 0) or 0) > 0 or str(t.get("lr_schedule", "constant")) != "constant":
        raise BenchError(f"{src}: the benchmark's peers implement a constant learning rate only")
    return cfg


def stats(ms):
    a = np.asarray(ms, dtype=np.float64)
    return {"min": float(a.min()), "median": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "mean": float(a.mean()), "max": float(a.max()), "steps": int(a.size)}


def machine_info():
    info = {"cpu": "unknown", "cores_online": os.cpu_count(), "flags": {}, "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == "Model name":
                info["cpu"] = v.strip()
            if k.strip() == "Flags":
                fl = set(v.split())
                info["flags"] = {f: (f in fl) for f in
                                 ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile",
                                  "amx_bf16", "amx_int8")}
    except OSError:
        pass
    try:
        info["load_average_1min"] = os.getloadavg()[0]
    except OSError:
        pass
    return info


def pin_to(threads):
    """Restricts this process (and its children) to `threads` cores when more
    are available; returns the cores used."""
    try:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) > threads:
            os.sched_setaffinity(0, cores[:threads])
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


# --------------------------------------------------------------------------
# Peers (each runs in its own process: `--worker NAME`)
# --------------------------------------------------------------------------

def torch_model(layers):
    """The chain as a torch nn.Sequential (training mode) holding the ONNX
    initial weights; BatchNorm momentum converted (torch = 1 - ONNX)."""
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    mods = []
    for L in layers:
        op = L["op"]
        if op == "linear":
            m = nn.Linear(L["w"].shape[1], L["w"].shape[0])
            m.weight.data.copy_(torch.from_numpy(L["w"]))
            m.bias.data.copy_(torch.from_numpy(L["b"]))
        elif op == "conv":
            w = L["w"]
            m = nn.Conv2d(w.shape[1] * L["group"], w.shape[0], tuple(w.shape[2:]), stride=tuple(L["strides"]),
                          padding=tuple(L["pads"]), dilation=tuple(L["dilations"]), groups=L["group"])
            m.weight.data.copy_(torch.from_numpy(w))
            m.bias.data.copy_(torch.from_numpy(L["b"]))
        elif op == "bn":
            m = nn.BatchNorm2d(L["scale"].shape[0], eps=L["eps"], momentum=1.0 - L["momentum"])
            m.weight.data.copy_(torch.from_numpy(L["scale"]))
            m.bias.data.copy_(torch.from_numpy(L["bias"]))
            m.running_mean.copy_(torch.from_numpy(L["mean"]))
            m.running_var.copy_(torch.from_numpy(L["var"]))
        elif op == "relu":
            m = nn.ReLU()
        elif op == "maxpool":
            m = nn.MaxPool2d(tuple(L["kernel"]), stride=tuple(L["strides"]))
        elif op == "flatten":
            m = nn.Flatten()
        mods.append(m)
    return nn.Sequential(*mods).train()


def run_torch(layers, opt, batches, warmup, compile_mode, compile_timeout):
    import torch
    import torch.nn as nn

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model = torch_model(layers)
    params = list(model.parameters())

    def make_opt(**extra):
        if opt["kind"] == "sgd":
            return torch.optim.SGD(params, lr=opt["lr"], momentum=opt["momentum"], dampening=opt["dampening"],
                                   nesterov=opt["nesterov"], weight_decay=opt["weight_decay"], **extra)
        return torch.optim.AdamW(params, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["epsilon"],
                                 weight_decay=opt["weight_decay"], **extra)

    # The fastest optimizer implementation this torch has on the CPU: fused
    # (torch >= 2.4 on the CPU), else foreach, else the default.
    optimizer, impl = None, "default"
    for extra, name in (({"fused": True}, "fused"), ({"foreach": True}, "foreach")):
        try:
            optimizer = make_opt(**extra)
            impl = name
            break
        except (RuntimeError, TypeError, ValueError):
            continue
    if optimizer is None:
        optimizer = make_opt()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=opt.get("label_smoothing", 0.0))

    fwd = lambda x, y: loss_fn(model(x), y)  # noqa: E731
    opt_step = optimizer.step
    clip = opt["grad_clip"]
    if compile_mode:
        fwd = torch.compile(fwd)
        opt_step = torch.compile(optimizer.step)

    def step(xb, yb):
        x = torch.from_numpy(xb)
        y = torch.from_numpy(yb)
        optimizer.zero_grad(set_to_none=True)
        loss = fwd(x, y)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt_step()
        return loss.item()

    extra = {"version": torch.__version__, "threads": torch.get_num_threads(),
             "interop_threads": torch.get_num_interop_threads(), "mkl": torch.backends.mkl.is_available(),
             "mkldnn": torch.backends.mkldnn.is_available(), "optimizer_impl": impl,
             "mode": "torch.compile" if compile_mode else "eager"}
    if compile_mode:
        import threading

        def too_slow():
            sys.stdout.write(json.dumps({"error": f"torch.compile: first step not done within {compile_timeout:g} s"})
                             + "\n")
            sys.stdout.flush()
            os._exit(3)

        timer = threading.Timer(compile_timeout, too_slow)
        timer.start()
        t0 = time.perf_counter()
        first = step(*batches[0])
        timer.cancel()
        extra["compile_s"] = time.perf_counter() - t0
        return timed_loop(step, batches, warmup, first), extra
    return timed_loop(step, batches, warmup, None), extra


def run_jax(layers, opt, batches, warmup):
    import jax
    import jax.numpy as jnp

    params, stats0, specs = [], [], []
    for L in layers:
        op = L["op"]
        if op == "linear":
            params.append({"w": jnp.asarray(L["w"]), "b": jnp.asarray(L["b"])})
            stats0.append({})
        elif op == "conv":
            params.append({"w": jnp.asarray(L["w"]), "b": jnp.asarray(L["b"])})
            stats0.append({})
        elif op == "bn":
            params.append({"w": jnp.asarray(L["scale"]), "b": jnp.asarray(L["bias"])})
            stats0.append({"mean": jnp.asarray(L["mean"]), "var": jnp.asarray(L["var"])})
        else:
            params.append({})
            stats0.append({})
        specs.append({k: v for k, v in L.items() if k not in ("w", "b", "scale", "bias", "mean", "var", "names")})

    def forward(params, stats, x):
        new_stats = []
        for spec, p, s in zip(specs, params, stats):
            op = spec["op"]
            if op == "linear":
                x = x @ p["w"].T + p["b"]
            elif op == "conv":
                x = jax.lax.conv_general_dilated(
                    x, p["w"], window_strides=spec["strides"], padding=[(q, q) for q in spec["pads"]],
                    rhs_dilation=spec["dilations"], dimension_numbers=("NCHW", "OIHW", "NCHW"),
                    feature_group_count=spec["group"])
                x = x + p["b"][None, :, None, None]
            elif op == "bn":
                # Training mode: batch statistics (biased variance) normalise;
                # running statistics take the unbiased variance (PyTorch, ONNX).
                mean = jnp.mean(x, axis=(0, 2, 3))
                var = jnp.mean(jnp.square(x - mean[None, :, None, None]), axis=(0, 2, 3))
                n = x.shape[0] * x.shape[2] * x.shape[3]
                m = spec["momentum"]
                s = {"mean": m * s["mean"] + (1 - m) * jax.lax.stop_gradient(mean),
                     "var": m * s["var"] + (1 - m) * jax.lax.stop_gradient(var) * (n / (n - 1))}
                inv = jax.lax.rsqrt(var + spec["eps"])
                x = (x - mean[None, :, None, None]) * (inv * p["w"])[None, :, None, None] + p["b"][None, :, None, None]
            elif op == "relu":
                x = jnp.maximum(x, 0)
            elif op == "maxpool":
                k, st = spec["kernel"], spec["strides"]
                x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, k[0], k[1]), (1, 1, st[0], st[1]),
                                          "VALID")
            elif op == "flatten":
                x = x.reshape(x.shape[0], -1)
            new_stats.append(s)
        return x, new_stats

    def loss_fn(params, stats, x, y):
        logits, new_stats = forward(params, stats, x)
        # Cross-entropy with label smoothing ls (PyTorch's definition):
        # (1 - ls) * nll(target) + ls * mean over classes of -log p.
        logp = jax.nn.log_softmax(logits, axis=1)
        nll = -jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]
        ls = opt.get("label_smoothing", 0.0)
        if ls:
            nll = (1 - ls) * nll - ls * jnp.mean(logp, axis=1)
        return jnp.mean(nll), new_stats

    kind, lr, wd, clip = opt["kind"], opt["lr"], opt["weight_decay"], opt["grad_clip"]
    tmap = jax.tree_util.tree_map
    if kind == "sgd":
        opt0 = {"buf": tmap(jnp.zeros_like, params)}
    else:
        opt0 = {"m": tmap(jnp.zeros_like, params), "v": tmap(jnp.zeros_like, params), "t": jnp.zeros((), jnp.float32)}

    def update(params, grads, o):
        if clip > 0:
            norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads)))
            scale = jnp.minimum(1.0, clip / (norm + 1e-6))
            grads = tmap(lambda g: g * scale, grads)
        if kind == "sgd":
            mom, damp = opt["momentum"], opt["dampening"]
            if wd:
                grads = tmap(lambda g, p: g + wd * p, grads, params)
            if mom:
                # PyTorch: the first step's buffer is the gradient itself
                # (no dampening); later buf = mom * buf + (1 - damp) * g.
                # With a zero-initialised buffer, mom * 0 + g is that first step.
                if damp:
                    gs = jnp.where(o["started"], 1.0 - damp, 1.0)
                    buf = tmap(lambda b, g: mom * b + gs * g, o["buf"], grads)
                    o = dict(o, buf=buf, started=jnp.asarray(True))
                else:
                    buf = tmap(lambda b, g: mom * b + g, o["buf"], grads)
                    o = dict(o, buf=buf)
                d = tmap(lambda g, b: g + mom * b, grads, buf) if opt["nesterov"] else buf
            else:
                d = grads
            return tmap(lambda p, u: p - lr * u, params, d), o
        b1, b2, eps = opt["beta1"], opt["beta2"], opt["epsilon"]
        t = o["t"] + 1
        m = tmap(lambda m_, g: b1 * m_ + (1 - b1) * g, o["m"], grads)
        v = tmap(lambda v_, g: b2 * v_ + (1 - b2) * g * g, o["v"], grads)
        bc1 = 1 - b1 ** t
        bc2 = 1 - b2 ** t

        def upd(p, m_, v_):
            p = p * (1 - lr * wd)
            return p - (lr / bc1) * m_ / (jnp.sqrt(v_) / jnp.sqrt(bc2) + eps)

        return tmap(upd, params, m, v), {"m": m, "v": v, "t": t}

    if kind == "sgd" and opt["dampening"] and opt["momentum"]:
        opt0["started"] = jnp.asarray(False)

    def train_step(state, x, y):
        params, o, stats = state
        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y)
        params, o = update(params, grads, o)
        return (params, o, new_stats), loss

    jstep = jax.jit(train_step, donate_argnums=(0,))
    state = [(params, opt0, stats0)]

    def step(xb, yb):
        state[0], loss = jstep(state[0], xb, yb)
        return float(loss.block_until_ready())

    t0 = time.perf_counter()
    first = step(*batches[0])
    extra = {"version": jax.__version__, "backend": jax.default_backend(), "compile_s": time.perf_counter() - t0,
             "xla_flags": os.environ.get("XLA_FLAGS", "")}
    return timed_loop(step, batches, warmup, first), extra


def timed_loop(step, batches, warmup, first_loss):
    """Runs every batch; steps >= warmup are timed. `first_loss` is step 0's
    loss when the caller already ran it (compilation)."""
    losses, ms = [], []
    start = 0
    if first_loss is not None:
        losses.append(first_loss)
        start = 1
    for k in range(start, len(batches)):
        xb, yb = batches[k]
        t = time.perf_counter()
        loss = step(xb, yb)
        dt = (time.perf_counter() - t) * 1e3
        losses.append(loss)
        if k >= warmup:
            ms.append(dt)
    return losses, ms


def worker_main(args):
    pin_to(args.threads)
    try:
        layers = onnx_chain(args.model)
        opt = json.loads(args.opt_json)
        x, y = load_digits_train(image_shape=any(L["op"] == "conv" for L in layers))
        batches = make_batches(x, y, args.batch, args.warmup + args.steps, args.cycle)
        if args.worker == "jax":
            (losses, ms), extra = run_jax(layers, opt, batches, args.warmup)
        elif args.worker in ("torch", "torch_compile"):
            (losses, ms), extra = run_torch(layers, opt, batches, args.warmup, args.worker == "torch_compile",
                                            args.compile_timeout)
        else:
            raise BenchError(f"unknown worker {args.worker}")
        out = {"losses": losses, "first_loss": losses[0], "step_ms_all": ms, **extra}
        if ms:
            out["step_ms"] = stats(ms)
    except BenchError as e:
        out = {"error": str(e)}
    except Exception as e:  # a peer failing is reported in the table, not fatal to the run
        import traceback

        out = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def run_worker(name, model_path, opt, args, batch, warmup, steps, cycle):
    env = dict(os.environ)
    t = str(args.threads)
    env.update({"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t,
                "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "",
                "XLA_FLAGS": (env.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()})
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--model", model_path,
           "--opt-json", json.dumps(opt), "--batch", str(batch), "--threads", t, "--warmup", str(warmup),
           "--steps", str(steps), "--cycle", str(cycle), "--compile-timeout", str(args.compile_timeout)]
    print(f"[bench_train] {name}: {os.path.relpath(model_path, ROOT)} batch {batch}", flush=True)
    load = os.getloadavg()[0]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.worker_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {args.worker_timeout} s", "load_before": load}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": f"exit {p.returncode}, no result; stderr tail: {p.stderr[-1500:]}", "load_before": load}
    r = json.loads(lines[-1])
    r["load_before"] = load
    return r


def tessera_cmd(cli, model_path, config, batch, threads, tail):
    cmd = [cli, "train", model_path]
    if config:
        cmd += ["--config", config]
    return cmd + ["--data", "digits", "--batch-size", str(batch), "--threads", str(threads)] + tail


def run_cli_json(cmd, timeout=900, env_extra=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    print("[bench_train] + " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd),
          flush=True)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout} s", "command": cmd}
    if p.returncode != 0:
        return {"error": f"exit {p.returncode}: {p.stderr.strip()[-1500:]}", "command": cmd}
    try:
        j = json.loads(p.stdout[p.stdout.index("{"):])
    except ValueError:
        return {"error": f"output is not JSON: {p.stdout[-800:]}", "command": cmd}
    j["command"] = cmd
    return j


def run_tessera(cli, model_path, config, batch, steps, threads, extra_args, env_extra):
    """`tessera train --bench-steps`: its own warm-up (JSON warmup_steps),
    then `steps` timed steps cycling over bench_cycle() fixed batches; plus a
    one-step run in file order whose loss is the first-step loss (initial
    weights, rows [0, batch)) the peers are checked against."""
    cores = pin_to(threads)
    load = os.getloadavg()[0]
    j = run_cli_json(tessera_cmd(cli, model_path, config, batch, threads,
                                 ["--bench-steps", str(steps), "--json"] + extra_args), env_extra=env_extra)
    j["cores"] = cores
    j["load_before"] = load
    if env_extra:
        j["env"] = env_extra
    if "error" in j:
        return j
    one = run_cli_json(tessera_cmd(cli, model_path, config, batch, threads,
                                   ["--steps", "1", "--no-shuffle", "--json"] + extra_args), env_extra=env_extra)
    if "error" in one:
        j["first_loss_error"] = one["error"]
    elif isinstance(one.get("final_loss"), (int, float)):
        j["first_loss"] = float(one["final_loss"])
    return j


def tessera_step_ms(j):
    s = j.get("step_ms")
    if isinstance(s, dict) and "median" in s:
        return s
    return None


def fmt(x):
    """A step_ms dict as 'median (min)'."""
    return "—" if x is None else f"{x['median']:.3f} ({x['min']:.3f})"


def validate(args, models):
    """Peers against PyTorch 1.13's reference losses (torch_ref.json): the
    batch size and step count of the reference, loss curves compared."""
    report = {}
    ok = True
    for m in models:
        d = os.path.join(args.models_dir, f"train_{m}")
        ref_path = os.path.join(d, "torch_ref.json")
        if not os.path.isfile(ref_path):
            print(f"[validate] {m}: {ref_path} missing; run scripts/gen_train_refs.py")
            ok = False
            continue
        with open(ref_path) as f:
            ref = json.load(f)
        opt = optimizer_config(None, ref_path)  # the reference's own settings, not the (tuned) config
        ref_losses = ref["losses"]
        report[m] = {}
        for name in args.peers:
            if name == "torch_compile":
                continue
            r = run_worker(name, os.path.join(d, "model.onnx"), opt, args, int(ref["batch_size"]), 0,
                           len(ref_losses), 0)
            if "error" in r:
                print(f"[validate] {m} {name}: ERROR {r['error']}")
                report[m][name] = {"error": r["error"]}
                ok = False
                continue
            got = np.asarray(r["losses"], dtype=np.float64)
            want = np.asarray(ref_losses, dtype=np.float64)
            rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-12)
            worst = int(rel.argmax())
            good = bool(rel.max() <= args.validate_tol)
            ok &= good
            print(f"[validate] {m} {name}: max rel diff {rel.max():.2e} at step {worst} "
                  f"({got[worst]:.6f} vs {want[worst]:.6f}) {'OK' if good else 'FAIL'}")
            report[m][name] = {"max_rel_diff": float(rel.max()), "step": worst, "ok": good}
    return ok, report


def config_path(args, m):
    p = args.config_pattern.format(m=m)
    return p if os.path.isabs(p) else os.path.join(ROOT, p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "bin", "tessera"), help="the tessera binary")
    ap.add_argument("--models", default="mlp,cnn", help="comma list of models/train_<m>")
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "models"))
    ap.add_argument("--config-pattern", default="examples/configs/train_{m}_digits.toml")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--peers", default="jax,torch,torch_compile", help="comma list of jax, torch, torch_compile")
    ap.add_argument("--no-tessera", action="store_true", help="peers only (develop the peer side)")
    ap.add_argument("--tessera-arg", action="append", default=[], help="extra argument for tessera train")
    ap.add_argument("--tessera-env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment for tessera train only (e.g. OMP_WAIT_POLICY=PASSIVE)")
    ap.add_argument("--loss-tol", type=float, default=1e-3, help="first-step loss agreement (absolute)")
    ap.add_argument("--compile-timeout", type=float, default=60.0, help="seconds torch.compile may take")
    ap.add_argument("--worker-timeout", type=float, default=900.0)
    ap.add_argument("--xla-flags", default="--xla_cpu_multi_thread_eigen=true",
                    help="added to XLA_FLAGS for the JAX worker")
    ap.add_argument("--validate", action="store_true",
                    help="instead of timing: check the peers reproduce torch_ref.json's loss curves")
    ap.add_argument("--validate-tol", type=float, default=5e-4)
    ap.add_argument("--out-json", default=os.path.join(ROOT, "bench", "results", "train_step.json"))
    ap.add_argument("--out-md", default=os.path.join(ROOT, "bench", "results", "train_step.md"))
    # internal: one peer in its own process
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--opt-json", help=argparse.SUPPRESS)
    ap.add_argument("--cycle", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)

    args.peers = [p for p in args.peers.split(",") if p]
    models = [m for m in args.models.split(",") if m]
    try:
        if args.validate:
            ok, _ = validate(args, models)
            return 0 if ok else 1
        return bench(args, models)
    except BenchError as e:
        print(f"bench_train: error: {e}", file=sys.stderr)
        return 2


def bench(args, models):
    if not args.no_tessera and not os.access(args.cli, os.X_OK):
        raise BenchError(f"{args.cli} not found; build it (cmake --build build --target tessera_cli "
                         "tessera_backend_cpu) or pass --cli / --no-tessera")
    cycle = bench_cycle(TRAIN_ROWS, args.batch)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(), "threads": args.threads, "batch": args.batch, "warmup": args.warmup,
              "steps": args.steps, "batch_cycle": cycle, "loss_tol": args.loss_tol, "models": {}}
    rows = []
    for m in models:
        d = os.path.join(args.models_dir, f"train_{m}")
        model_path = os.path.join(d, "model.onnx")
        if not os.path.isfile(model_path):
            raise BenchError(f"{model_path} missing; run .venv/bin/python scripts/gen_train_refs.py --out models")
        cfg = config_path(args, m)
        opt = optimizer_config(cfg, os.path.join(d, "torch_ref.json"))
        entry = {"model": os.path.relpath(model_path, ROOT), "optimizer": opt}
        tess = None
        if not args.no_tessera:
            tess = run_tessera(args.cli, model_path, cfg if os.path.isfile(cfg) else None, args.batch, args.steps,
                               args.threads, args.tessera_arg,
                               dict(kv.split("=", 1) for kv in args.tessera_env))
            entry["tessera"] = tess
            if "error" in tess:
                print(f"[bench_train] tessera: ERROR {tess['error']}")
            else:
                print(f"[bench_train] tessera: first loss {tess.get('first_loss', float('nan')):.6f}, median "
                      f"{tess['step_ms']['median']:.3f} ms", flush=True)
        ok_tess = tess is not None and "error" not in tess
        # Peers run at least as many steps as Tessera did, so that the loss
        # of Tessera's last step can be compared too.
        t_warm = int(tess.get("warmup_steps", 0)) if ok_tess else 0
        warmup = max(args.warmup, t_warm)
        peers = {}
        for name in args.peers:
            r = run_worker(name, model_path, opt, args, args.batch, warmup, args.steps, cycle)
            peers[name] = r
            if "error" in r:
                print(f"[bench_train] {name}: ERROR {r['error']}")
            else:
                print(f"[bench_train] {name}: first loss {r['first_loss']:.6f}, median "
                      f"{r['step_ms']['median']:.3f} ms" + (f" (compile {r['compile_s']:.1f} s)"
                                                            if "compile_s" in r else ""), flush=True)
        entry["peers"] = peers

        # Same computation? Each peer's first-step loss against Tessera's (or,
        # without Tessera, against the first peer's), and the loss of
        # Tessera's last timed step against the peer's loss at that step.
        t_first = tess.get("first_loss") if ok_tess else None
        t_last = tess.get("final_loss") if ok_tess else None
        t_last_idx = t_warm + args.steps - 1
        ref_first = t_first
        if ref_first is None:
            firsts = [r["first_loss"] for r in peers.values() if "first_loss" in r]
            ref_first = firsts[0] if firsts else None
        agree = {}
        for name, r in peers.items():
            if "first_loss" not in r or ref_first is None:
                continue
            a = {"first_loss": r["first_loss"], "first_abs_diff": abs(r["first_loss"] - ref_first)}
            ok = a["first_abs_diff"] <= args.loss_tol
            if isinstance(t_last, (int, float)) and len(r["losses"]) > t_last_idx:
                a["last_step"] = t_last_idx
                a["last_loss"] = r["losses"][t_last_idx]
                a["last_abs_diff"] = abs(r["losses"][t_last_idx] - t_last)
                ok = ok and a["last_abs_diff"] <= args.loss_tol
            a["ok"] = ok
            agree[name] = a
            r["same_computation"] = ok
        entry["loss_check"] = {"reference": "tessera" if t_first is not None else "first peer",
                               "tessera_first_loss": t_first, "tessera_last_loss": t_last,
                               "tessera_last_step": t_last_idx if t_last is not None else None, "peers": agree}
        if ok_tess and t_first is None:
            entry["loss_check"]["note"] = "no Tessera first-step loss: " + tess.get("first_loss_error", "?")

        # The fastest peer whose computation agrees (median step time).
        valid = {n: r for n, r in peers.items() if "step_ms" in r and r.get("same_computation", True)}
        fastest = min(valid, key=lambda n: valid[n]["step_ms"]["median"]) if valid else None
        t_ms = tessera_step_ms(tess) if ok_tess else None
        ratio = t_ms["median"] / valid[fastest]["step_ms"]["median"] if (t_ms and fastest) else None
        entry["fastest_peer"] = fastest
        entry["ratio_tessera_over_fastest_peer"] = ratio
        # Every peer agrees with the others but not with Tessera's last step:
        # Tessera trains differently (a Tessera bug, not a peer's); the ratio
        # is then reported apart, unchecked, for information only.
        lasts = [a["last_loss"] for a in agree.values() if "last_loss" in a]
        if (fastest is None and t_ms and agree and all(a["first_abs_diff"] <= args.loss_tol for a in agree.values())
                and lasts and max(lasts) - min(lasts) <= args.loss_tol):
            timed = {n: r for n, r in peers.items() if "step_ms" in r}
            fu = min(timed, key=lambda n: timed[n]["step_ms"]["median"])
            entry["tessera_diverges_from_peers"] = True
            entry["unchecked_fastest_peer"] = fu
            entry["unchecked_ratio"] = t_ms["median"] / timed[fu]["step_ms"]["median"]
        entry["meets_issue_goal"] = None if ratio is None else bool(ratio <= 1.0)
        result["models"][m] = entry

        if t_ms and fastest:
            entry["ratio_min_tessera_over_fastest_peer"] = t_ms["min"] / valid[fastest]["step_ms"]["min"]

        def med(n):
            r = peers.get(n)
            return r["step_ms"] if r and "step_ms" in r else None

        rows.append((m, t_ms, med("jax"), med("torch"), med("torch_compile"), fastest, ratio))
        if entry.get("tessera_diverges_from_peers"):
            print(f"[bench_train] {m}: WARNING: Tessera's loss at step {t_last_idx} ({t_last:.6f}) differs from "
                  f"every peer's (which agree: {lasts[0]:.6f}); Tessera trains differently, no valid ratio")

    os.makedirs(os.path.dirname(args.out_json), exist_ok=True)
    with open(args.out_json, "w") as f:
        json.dump(result, f, indent=2)
    md = write_md(result, rows)
    with open(args.out_md, "w") as f:
        f.write(md)
    print()
    print(md)
    print(f"[bench_train] wrote {os.path.relpath(args.out_json, ROOT)} and {os.path.relpath(args.out_md, ROOT)}")
    for m, _, _, _, _, fastest, ratio in rows:
        if ratio is not None:
            print(f"[bench_train] {m}: tessera / {fastest} = {ratio:.2f}x "
                  f"({'meets' if ratio <= 1.0 else 'misses'} the <= 1.0x goal)")
    return 0


def write_md(result, rows):
    mi = result["machine"]
    flags = ", ".join(k for k, v in mi.get("flags", {}).items() if v) or "?"
    out = [f"# Training step, {result['threads']} threads, batch {result['batch']}",
           "",
           f"{result['date']} · {mi['cpu']} ({mi['cores_online']} cores online; {flags}) · "
           f"load {mi.get('load_average_1min', 0):.2f} · peers: warm-up {result['warmup']}, {result['steps']} timed "
           f"steps over {result['batch_cycle']} fixed digits batches (as `tessera train --bench-steps`). "
           "Step time in ms, median (min): forward + backward + optimizer update, loss fetched to the host. "
           "The ratio compares medians.",
           "",
           ] + ([f"**Warning: the machine was busy (1-min load {mi['load_average_1min']:.1f} on "
                 f"{mi['cores_online']} cores): these numbers are noisy; rerun on a quiet machine.**", ""]
                if mi.get("load_average_1min", 0) > 0.5 * (mi.get("cores_online") or 1) else []) + [
           "| model | Tessera | JAX (jit) | PyTorch eager | torch.compile | fastest peer | Tessera / fastest |",
           "|---|---:|---:|---:|---:|---|---:|"]
    for m, t, j, te, tc, fastest, ratio in rows:
        e = result["models"][m]
        rs = "—" if ratio is None else f"{ratio:.2f}x"
        if ratio is None and e.get("unchecked_ratio") is not None:
            rs = f"({e['unchecked_ratio']:.2f}x vs {e['unchecked_fastest_peer']}, unchecked: Tessera's loss diverges)"
        out.append(f"| {m} | {fmt(t)} | {fmt(j)} | {fmt(te)} | {fmt(tc)} | {fastest or '—'} | {rs} |")
    out.append("")
    out.append(f"Same computation (|loss difference| <= {result['loss_tol']:g} at the first step, same weights and "
               "batch, and at Tessera's last timed step):")
    out.append("")
    for m, e in result["models"].items():
        lc = e["loss_check"]
        tf, tl = lc["tessera_first_loss"], lc["tessera_last_loss"]
        head = (f"- {m}: Tessera first {'—' if tf is None else f'{tf:.6f}'}, "
                f"last {'—' if tl is None else f'{tl:.6f}'} (step {lc['tessera_last_step']})")
        parts = []
        for n, a in lc["peers"].items():
            s = f"{n} {a['first_loss']:.6f}"
            if "last_loss" in a:
                s += f" / {a['last_loss']:.6f}"
            parts.append(s + (" ok" if a["ok"] else " MISMATCH (excluded)"))
        out.append(head + "; " + ", ".join(parts))
        if lc.get("note"):
            out.append(f"  - {lc['note']}")
        for n, r in e["peers"].items():
            if "error" in r:
                out.append(f"  - {n}: not measured: {r['error'].splitlines()[0][:200]}")
            elif n == "torch" or n == "torch_compile":
                out.append(f"  - {n}: torch {r['version']}, {r['threads']} threads, optimizer {r['optimizer_impl']}"
                           + (f", compile {r['compile_s']:.0f} s" if "compile_s" in r else ""))
            elif n == "jax":
                out.append(f"  - jax {r['version']} ({r['backend']}), compile {r['compile_s']:.1f} s")
        t = e.get("tessera")
        if t and t.get("error"):
            out.append(f"  - tessera: not measured: {t['error'].splitlines()[0][:200]}")
        elif t:
            out.append(f"  - tessera: warm-up {t.get('warmup_steps')}, {t.get('bench_steps')} timed steps, "
                       f"session creation {t.get('create_ms', 0):.0f} ms")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())

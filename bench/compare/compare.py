#!/usr/bin/env python3
"""Tessera vs ONNX Runtime vs OpenVINO on the CPU, in one run (issue 6, item 4).

    .venv-peers/bin/python bench/compare/compare.py --cli build/bin/tessera [--quick] [--models a,b]

(scripts/bench_compare.sh installs the peers, generates the models and runs this.)

Per model, with the same seeded random inputs and the same thread count everywhere, it measures
    tessera_f32   `tessera bench MODEL --threads T --inputs DIR --json`
    tessera_bf16  the same with --precision bf16
    ort_f32       ONNX Runtime, CPU EP, ORT_ENABLE_ALL, intra_op T, inter_op 1, sequential
    ov_f32        OpenVINO CPU, INFERENCE_PRECISION_HINT f32, NUM_STREAMS 1, INFERENCE_NUM_THREADS T,
                  PERFORMANCE_HINT LATENCY
    ov_bf16       the same with INFERENCE_PRECISION_HINT bf16
in --rounds interleaved rounds (every runtime once per round, in that order), so that drift in the
machine's load hits all runtimes alike; each round runs iters/rounds timed runs after --warmup
untimed ones. ORT and OpenVINO sessions are created once per model (after the first round they warm
up with one run); Tessera is a fresh process per round (its compile time is reported, not timed).
Latencies of all rounds are pooled.

Correctness, alongside: Tessera f32 vs ORT f32 outputs (max abs and relative error) on every model;
Tessera bf16 vs Tessera f32 on every model; top-1 agreement of Tessera bf16 vs f32 (and of Tessera
f32 vs ORT, OpenVINO bf16 vs ORT) on --top1-n random images for ResNet-50 and MobileNetV2.

Writes OUT/compare.json, OUT/compare.md (table and ratios) and OUT/compare.png, and prints the
ratios Tessera f32 / ORT f32, Tessera bf16 / ORT f32 and Tessera bf16 / OpenVINO bf16.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RUNTIMES = ["tessera_f32", "tessera_bf16", "ort_f32", "ov_f32", "ov_bf16"]
LABELS = {"tessera_f32": "Tessera f32", "tessera_bf16": "Tessera bf16", "ort_f32": "ORT f32",
          "ov_f32": "OpenVINO f32", "ov_bf16": "OpenVINO bf16"}
# (ratio key, numerator, denominator, issue 6 target: ratio <= target)
RATIOS = [("tessera_f32/ort_f32", "tessera_f32", "ort_f32", 1.0),
          ("tessera_bf16/ort_f32", "tessera_bf16", "ort_f32", 0.5),
          ("tessera_bf16/ov_bf16", "tessera_bf16", "ov_bf16", 1.0)]

# kind "latency": batch 1 (the MLP: 64), many short runs; "throughput": batch 32, few long runs.
# ints: {input name: vocabulary size} for integer inputs; other integer/bool inputs are zeros
# (the encoder's pad_mask: no padding).
MODELS = [
    {"key": "resnet50", "label": "ResNet-50 b1", "path": "models/resnet50/model.onnx", "kind": "latency"},
    {"key": "mobilenet_v2", "label": "MobileNetV2 b1", "path": "models/bench/mobilenet_v2/model.onnx",
     "kind": "latency"},
    {"key": "bert_base", "label": "BERT-base encoder b1 s128", "path": "models/bert_base/model.onnx",
     "kind": "latency"},
    {"key": "gpt2_small", "label": "GPT-2-small decoder b1 s128", "path": "models/gpt2_small/model.onnx",
     "kind": "latency", "ints": {"ids": 8192}},
    {"key": "mlp_wide", "label": "MLP 784-1024-1024-10 b64", "path": "models/mlp_wide/model.onnx",
     "kind": "latency"},
    {"key": "resnet50_b32", "label": "ResNet-50 b32", "path": "models/bench/resnet50_b32/model.onnx",
     "kind": "throughput", "unit": "images/s"},
    {"key": "bert_base_b32", "label": "BERT-base encoder b32 s128", "path": "models/bench/bert_base_b32/model.onnx",
     "kind": "throughput", "unit": "sequences/s"},
]
# Image models checked for top-1 agreement: their symbolic-batch exports.
TOP1 = {"resnet50": "models/bench/resnet50_dyn/model.onnx",
        "mobilenet_v2": "models/bench/mobilenet_v2_dyn/model.onnx"}
ENCODER = "bert_base"  # the model whose bf16 output error the issue asks for


def log(msg):
    print(f"[compare {datetime.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Machine


def cpu_info():
    info = {"model_name": platform.processor() or "unknown", "flags": []}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == "Model name":
                info["model_name"] = v.strip()
            elif k.strip() == "Flags":
                info["flags"] = v.split()
    except OSError:
        pass
    flags = set(info.pop("flags"))
    info["avx512f"] = "avx512f" in flags
    info["avx512_bf16"] = "avx512_bf16" in flags
    info["amx_bf16"] = "amx_bf16" in flags
    info["amx_tile"] = "amx_tile" in flags
    info["logical_cpus"] = os.cpu_count()
    return info


def loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def git_commit():
    p = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (p.stdout.strip() or "unknown") + ("+dirty" if dirty else "")


# ---------------------------------------------------------------------------------------------
# Inputs and statistics


ONNX_TO_NP = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64}


def graph_inputs(model_path):
    """[(name, numpy dtype, shape)] of the graph inputs that are not initializers; symbolic dims are None."""
    import onnx

    g = onnx.load(model_path, load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    res = []
    for i in g.input:
        if i.name in inits:
            continue
        t = i.type.tensor_type
        if t.elem_type not in ONNX_TO_NP:
            raise SystemExit(f"compare: {model_path}: input '{i.name}' has ONNX type {t.elem_type}, "
                             "which this script cannot generate")
        shape = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        res.append((i.name, ONNX_TO_NP[t.elem_type], shape))
    return res


def make_inputs(spec, rng, batch=None):
    """Seeded random inputs: floats N(0, 1), integer inputs named in spec['ints'] uniform in
    [0, vocab), other integer/bool inputs zeros. batch binds a symbolic dim 0."""
    arrays = []
    for name, dt, shape in graph_inputs(os.path.join(ROOT, spec["path"])):
        shape = [batch if (d is None and k == 0 and batch) else d for k, d in enumerate(shape)]
        if any(d is None for d in shape):
            raise SystemExit(f"compare: {spec['path']}: input '{name}' has symbolic dims {shape}")
        if np.issubdtype(dt, np.floating):
            a = rng.standard_normal(shape).astype(dt)
        elif name in spec.get("ints", {}):
            a = rng.integers(0, spec["ints"][name], size=shape).astype(dt)
        else:
            a = np.zeros(shape, dtype=dt)
        arrays.append((name, a))
    return arrays


def save_inputs(arrays, folder):
    """Writes input_K.pb (ONNX TensorProto) for `tessera --inputs`."""
    from onnx import numpy_helper

    os.makedirs(folder, exist_ok=True)
    for k, (name, a) in enumerate(arrays):
        with open(os.path.join(folder, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(a), name).SerializeToString())


def load_outputs(folder):
    from onnx import numpy_helper, TensorProto

    res, k = [], 0
    while os.path.isfile(os.path.join(folder, f"output_{k}.pb")):
        t = TensorProto()
        with open(os.path.join(folder, f"output_{k}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        res.append(numpy_helper.to_array(t))
        k += 1
    return res


def stats(lat_ms):
    a = np.asarray(lat_ms, dtype=np.float64)
    q1, med, q3, p90 = np.percentile(a, [25, 50, 75, 90])
    return {"n": int(a.size), "min": float(a.min()), "median": float(med), "p90": float(p90),
            "q1": float(q1), "q3": float(q3), "max": float(a.max()), "mean": float(a.mean()),
            "p90_over_median": float(p90 / med) if med > 0 else None,
            "iqr_over_median": float((q3 - q1) / med) if med > 0 else None}


def errors(got, ref):
    """max |got-ref|, that over max |ref| (scale-relative) and the max elementwise relative error
    |got-ref| / (|ref| + 1e-3 max|ref|)."""
    g = np.asarray(got, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if g.shape != r.shape:
        return {"error": f"shape {list(g.shape)} vs reference {list(r.shape)}"}
    d = np.abs(g - r)
    scale = float(np.abs(r).max()) if r.size else 0.0
    return {"max_abs": float(d.max()) if d.size else 0.0,
            "max_abs_over_max_ref": float(d.max() / scale) if scale > 0 else None,
            "max_rel_elementwise": float((d / (np.abs(r) + 1e-3 * scale)).max()) if scale > 0 else None,
            "finite": bool(np.isfinite(g).all())}


# ---------------------------------------------------------------------------------------------
# Runtimes


class Ort:
    def __init__(self, path, threads, spin=True):
        import onnxruntime as ort

        so = ort.SessionOptions()
        if not spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        t0 = time.perf_counter()
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.compile_ms = (time.perf_counter() - t0) * 1e3

    def run(self, arrays):
        return self.sess.run(None, dict(arrays))

    def time(self, arrays, warmup, iters):
        feed = dict(arrays)
        for _ in range(warmup):
            self.sess.run(None, feed)
        lat = []
        for _ in range(iters):
            t = time.perf_counter()
            self.sess.run(None, feed)
            lat.append((time.perf_counter() - t) * 1e3)
        return lat


class Ov:
    def __init__(self, core, path, threads, precision):
        cfg = {"INFERENCE_PRECISION_HINT": precision, "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads),
               "PERFORMANCE_HINT": "LATENCY"}
        t0 = time.perf_counter()
        self.compiled = core.compile_model(path, "CPU", cfg)
        self.compile_ms = (time.perf_counter() - t0) * 1e3
        self.request = self.compiled.create_infer_request()
        self.precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))

    def run(self, arrays):
        res = self.request.infer([a for _, a in arrays])
        return [np.array(res[o]) for o in self.compiled.outputs]

    def time(self, arrays, warmup, iters):
        feed = [np.ascontiguousarray(a) for _, a in arrays]
        for _ in range(warmup):
            self.request.infer(feed, share_inputs=True, share_outputs=True)
        lat = []
        for _ in range(iters):
            t = time.perf_counter()
            self.request.infer(feed, share_inputs=True, share_outputs=True)
            lat.append((time.perf_counter() - t) * 1e3)
        return lat


TESSERA_ENV = {}  # extra environment of every tessera process (--tessera-env, --no-spin)


def tessera(cli, args, what):
    cmd = [cli] + args
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **TESSERA_ENV))
    if p.returncode != 0:
        raise RuntimeError(f"{what}: `{' '.join(cmd)}` exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"{what}: `{' '.join(cmd)}` printed no JSON ({e}): {p.stdout[:500]}")


def tessera_bench(cli, path, inputs_dir, threads, warmup, iters, bf16):
    args = ["bench", path, "--threads", str(threads), "--warmup", str(warmup), "--iters", str(iters),
            "--inputs", inputs_dir, "--json"]
    if bf16:
        args += ["--precision", "bf16"]
    return tessera(cli, args, "tessera bench")


def tessera_run(cli, path, inputs_dir, out_dir, threads, bf16, dims=None):
    args = ["run", path, "--threads", str(threads), "--inputs", inputs_dir, "--save", out_dir, "--json"]
    for d in dims or []:
        args += ["--dim", d]
    if bf16:
        args += ["--precision", "bf16"]
    j = tessera(cli, args, "tessera run")
    return j, load_outputs(out_dir)


# ---------------------------------------------------------------------------------------------
# Measurement


def measure_model(spec, a, core, work):
    """Interleaved rounds of every runtime on one model; returns the model's JSON record."""
    path = os.path.join(ROOT, spec["path"])
    rec = {"key": spec["key"], "label": spec["label"], "model": spec["path"], "kind": spec["kind"],
           "runtimes": {}, "errors": {}}
    rng = np.random.default_rng(a.seed)
    arrays = make_inputs(spec, rng)
    rec["inputs"] = {n: {"shape": list(x.shape), "dtype": str(x.dtype)} for n, x in arrays}
    batch = int(arrays[0][1].shape[0])
    rec["batch"] = batch
    in_dir = os.path.join(work, spec["key"], "inputs")
    save_inputs(arrays, in_dir)

    thr = spec["kind"] == "throughput"
    iters = a.iters_batch if thr else a.iters
    warmup = a.warmup_batch if thr else a.warmup
    rounds = max(1, min(a.rounds, iters))
    per_round = [iters // rounds + (1 if r < iters % rounds else 0) for r in range(rounds)]

    runners = {}
    lat = {r: [] for r in RUNTIMES}
    extra = {r: {} for r in RUNTIMES}
    for name in RUNTIMES:
        if name not in a.runtimes:
            continue
        try:
            if name == "ort_f32":
                runners[name] = Ort(path, a.threads, spin=not a.no_spin)
            elif name.startswith("ov_"):
                runners[name] = Ov(core, path, a.threads, name[3:])
                extra[name]["precision"] = runners[name].precision
            if name in runners:
                extra[name]["compile_ms"] = runners[name].compile_ms
        except Exception as e:  # noqa: BLE001  (a peer that cannot load the model is reported, not fatal)
            rec["errors"][name] = f"{type(e).__name__}: {e}"
            log(f"{spec['key']}: {name} failed to load: {e}")

    for r, n in enumerate(per_round):
        for name in RUNTIMES:
            if name not in a.runtimes or name in rec["errors"]:
                continue
            try:
                if name.startswith("tessera"):
                    j = tessera_bench(a.cli, path, in_dir, a.threads, warmup, n, name.endswith("bf16"))
                    lat[name] += j["latencies_ms"]
                    extra[name].setdefault("compile_ms_rounds", []).append(j["compile_ms"])
                    if "precision_check" in j:
                        extra[name]["precision_check"] = j["precision_check"]
                    extra[name]["placement"] = j.get("placement")
                else:
                    # In-process sessions stay warm between rounds: a full warmup only in the first.
                    lat[name] += runners[name].time(arrays, warmup if r == 0 else min(warmup, 1), n)
            except Exception as e:  # noqa: BLE001
                rec["errors"][name] = f"{type(e).__name__}: {e}"
                log(f"{spec['key']}: {name} failed: {e}")
        done = {k: f"{np.median(v):.2f}" for k, v in lat.items() if v}
        log(f"{spec['key']}: round {r + 1}/{rounds} ({n} runs each): median ms so far {done}")

    for name in RUNTIMES:
        if lat[name]:
            s = stats(lat[name])
            s.update(extra[name])
            s["latencies_ms"] = [round(x, 4) for x in lat[name]]
            if thr:
                s["items_per_s"] = batch * 1000.0 / s["median"]
            rec["runtimes"][name] = s
    rec["ratios"] = {}
    for key, num, den, target in RATIOS:
        if num in rec["runtimes"] and den in rec["runtimes"]:
            v = rec["runtimes"][num]["median"] / rec["runtimes"][den]["median"]
            v_min = rec["runtimes"][num]["min"] / rec["runtimes"][den]["min"]
            rec["ratios"][key] = {"value": v, "target": target, "met": v <= target, "by_min": v_min}

    if not a.skip_correctness:
        rec["correctness"] = correctness(spec, a, arrays, in_dir, runners, work)
    for name in list(runners):
        del runners[name]
    return rec


def correctness(spec, a, arrays, in_dir, runners, work):
    """Outputs on the benchmark inputs: Tessera f32 vs ORT, Tessera bf16 vs Tessera f32 (and vs ORT;
    batch-1 models only), OpenVINO vs ORT."""
    path = os.path.join(ROOT, spec["path"])
    res = {}
    outs = {}
    try:
        if "ort_f32" in runners:
            outs["ort_f32"] = runners["ort_f32"].run(arrays)
        for name in ("ov_f32", "ov_bf16"):
            if name in runners:
                outs[name] = runners[name].run(arrays)
        for name, bf16 in (("tessera_f32", False), ("tessera_bf16", True)):
            # The batch-32 exports repeat the batch-1 models: their bf16 error is not checked again.
            if name in a.runtimes and not (bf16 and spec["kind"] == "throughput"):
                j, o = tessera_run(a.cli, path, in_dir, os.path.join(work, spec["key"], name), a.threads, bf16)
                outs[name] = o
                if bf16 and "precision_check" in j:
                    res["tessera_bf16_self_check"] = j["precision_check"]
    except Exception as e:  # noqa: BLE001
        res["error"] = f"{type(e).__name__}: {e}"
        log(f"{spec['key']}: correctness: {e}")
    pairs = [("tessera_f32", "ort_f32"), ("tessera_bf16", "tessera_f32"), ("tessera_bf16", "ort_f32"),
             ("ov_f32", "ort_f32"), ("ov_bf16", "ort_f32")]
    for got, ref in pairs:
        if got in outs and ref in outs:
            res[f"{got}_vs_{ref}"] = [errors(g, r) for g, r in zip(outs[got], outs[ref])]
    return res


def top1(a, core, work):
    """Top-1 agreement on a.top1_n random images, in chunks of a.top1_chunk (symbolic-batch exports)."""
    res = {}
    for key, rel in TOP1.items():
        if a.models and key not in a.models:
            continue
        path = os.path.join(ROOT, rel)
        if not os.path.isfile(path):
            res[key] = {"error": f"{rel} missing (run bench/compare/export_models.py)"}
            continue
        log(f"top-1: {key} on {a.top1_n} random inputs")
        spec = {"path": rel}
        rng = np.random.default_rng(a.seed + 1)
        argmax = {k: [] for k in ("tessera_f32", "tessera_bf16", "ort_f32", "ov_bf16")}
        try:
            ort_s = Ort(path, a.threads, spin=not a.no_spin)
            ov_s = Ov(core, path, a.threads, "bf16") if core is not None else None
            left = a.top1_n
            chunk_id = 0
            while left > 0:
                b = min(a.top1_chunk, left)
                arrays = make_inputs(spec, rng, batch=b)
                d = os.path.join(work, "top1", key, str(chunk_id))
                save_inputs(arrays, os.path.join(d, "inputs"))
                for name, bf16 in (("tessera_f32", False), ("tessera_bf16", True)):
                    _, o = tessera_run(a.cli, path, os.path.join(d, "inputs"), os.path.join(d, name), a.threads, bf16,
                                       dims=[f"batch={b}"])
                    argmax[name].append(np.argmax(o[0].reshape(b, -1), axis=1))
                argmax["ort_f32"].append(np.argmax(ort_s.run(arrays)[0].reshape(b, -1), axis=1))
                if ov_s is not None:
                    argmax["ov_bf16"].append(np.argmax(ov_s.run(arrays)[0].reshape(b, -1), axis=1))
                left -= b
                chunk_id += 1
            am = {k: np.concatenate(v) for k, v in argmax.items() if v}

            def agree(x, y):
                return float((am[x] == am[y]).mean()) if x in am and y in am else None

            res[key] = {"n": a.top1_n, "model": rel,
                        "tessera_bf16_vs_tessera_f32": agree("tessera_bf16", "tessera_f32"),
                        "tessera_f32_vs_ort_f32": agree("tessera_f32", "ort_f32"),
                        "ov_bf16_vs_ort_f32": agree("ov_bf16", "ort_f32"),
                        "target": 0.99}
            res[key]["met"] = (res[key]["tessera_bf16_vs_tessera_f32"] or 0) >= 0.99
        except Exception as e:  # noqa: BLE001
            res[key] = {"error": f"{type(e).__name__}: {e}"}
            log(f"top-1 {key}: {e}")
    return res


# ---------------------------------------------------------------------------------------------
# Reports


def fmt_ms(s):
    half_iqr = (s["q3"] - s["q1"]) / 2
    return f"{s['median']:.2f} ±{100 * half_iqr / s['median']:.0f}%"


def _load(v):
    return " ".join(f"{x:.2f}" for x in v) if v else "n/a"


def write_md(report, path):
    m = report["machine"]
    L = []
    L.append("# Tessera vs ONNX Runtime vs OpenVINO (CPU)\n")
    L.append(f"Run {report['date']} on **{m['cpu']['model_name']}**, {report['config']['threads']} threads "
             f"everywhere, {m['cpu']['logical_cpus']} logical CPUs. "
             f"AVX-512 {'yes' if m['cpu']['avx512f'] else 'no'}, avx512_bf16 "
             f"{'yes' if m['cpu']['avx512_bf16'] else 'no'}, AMX "
             f"{'yes' if m['cpu']['amx_bf16'] else 'no'}"
             + ("" if m['cpu']['amx_bf16'] else " (bf16 matmul/conv run on AVX-512 BF16 dot products, not AMX tiles)")
             + ".\n")
    L.append(f"Versions: Tessera {report['versions']['tessera']}, ONNX Runtime {report['versions']['onnxruntime']}, "
             f"OpenVINO {report['versions']['openvino']}. Load average (1/5/15 min) before/after: "
             f"{_load(report['machine']['loadavg_before'])} / {_load(report['machine']['loadavg_after'])}.\n")
    c = report["config"]
    busy = max((m.get("loadavg_before") or [0])[0], (m.get("loadavg_after") or [0])[0])
    if busy > 0.5 * (m["cpu"]["logical_cpus"] or 1):
        L.append(f"**Warning: the machine was busy (load average up to {busy:.1f} on {m['cpu']['logical_cpus']} "
                 "logical CPUs): these latencies measure the contention as much as the runtimes. "
                 "Rerun on an idle machine before drawing conclusions.**\n")
    L.append(f"Iterations: {c['rounds']} interleaved rounds; latency models {c['iters']} timed runs per runtime "
             f"({c['warmup']} warmup per round), batch-32 models {c['iters_batch']} ({c['warmup_batch']} warmup per "
             f"round){' — QUICK RUN, not for publication' if c['quick'] else ''}.\n")
    if c.get("no_spin") or c.get("tessera_env"):
        L.append(f"Thread waiting: --no-spin={c.get('no_spin')} (ORT session.intra_op.allow_spinning=0, "
                 f"Tessera OMP_WAIT_POLICY=passive); Tessera environment {c.get('tessera_env')}.\n")
    L.append("Cells: median latency in ms ± half the interquartile range (as % of the median). "
             "Batch-32 rows add throughput.\n")
    hdr = "| Model | " + " | ".join(LABELS[r] for r in RUNTIMES) + \
        " | Tessera f32 / ORT f32 (≤1.0) | Tessera bf16 / ORT f32 (≤0.5) | Tessera bf16 / OV bf16 (≤1.0) |"
    L.append(hdr)
    L.append("|" + "---|" * (1 + len(RUNTIMES) + len(RATIOS)))
    for rec in report["models"]:
        cells = [rec["label"]]
        for r in RUNTIMES:
            s = rec["runtimes"].get(r)
            if s is None:
                cells.append("error" if r in rec["errors"] else "—")
            else:
                cell = fmt_ms(s)
                if "items_per_s" in s:
                    cell += f"<br>{s['items_per_s']:.1f} {dict((x['key'], x.get('unit', '')) for x in MODELS)[rec['key']]}"
                cells.append(cell)
        for key, _, _, _ in RATIOS:
            q = rec["ratios"].get(key)
            cells.append("—" if q is None else f"{q['value']:.2f} {'✅' if q['met'] else '❌'}")
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("Ratios of the minimum latencies (less sensitive to a busy machine): " + "; ".join(
        f"{rec['label']}: " + ", ".join(f"{k} {q['by_min']:.2f}" for k, q in rec["ratios"].items())
        for rec in report["models"] if rec["ratios"]) + ".\n")
    L.append("Spread (p90 / median): " + "; ".join(
        f"{rec['label']}: " + ", ".join(f"{LABELS[r]} {rec['runtimes'][r]['p90_over_median']:.2f}"
                                        for r in RUNTIMES if r in rec["runtimes"])
        for rec in report["models"]) + ".\n")

    L.append("## Correctness\n")
    L.append("| Model | Tessera f32 vs ORT f32: max abs (rel to max\\|ref\\|) | Tessera bf16 vs Tessera f32: "
             "max abs (rel to max\\|ref\\|) | OpenVINO bf16 vs ORT f32 |")
    L.append("|---|---|---|---|")

    def cell(rec, k):
        v = rec.get("correctness", {}).get(k)
        if not v:
            return "—"
        e = v[0]
        if "error" in e:
            return e["error"]
        rel = e["max_abs_over_max_ref"]
        return f"{e['max_abs']:.3g} ({rel:.3g})" if rel is not None else f"{e['max_abs']:.3g}"

    for rec in report["models"]:
        L.append(f"| {rec['label']} | {cell(rec, 'tessera_f32_vs_ort_f32')} | {cell(rec, 'tessera_bf16_vs_tessera_f32')} "
                 f"| {cell(rec, 'ov_bf16_vs_ort_f32')} |")
    L.append("")
    for key, t in report.get("top1", {}).items():
        if "error" in t:
            L.append(f"- Top-1 {key}: error: {t['error']}")
            continue
        L.append(f"- Top-1 agreement, {key}, {t['n']} random inputs: Tessera bf16 vs Tessera f32 "
                 f"**{100 * t['tessera_bf16_vs_tessera_f32']:.0f}%** (target ≥ 99% {'✅' if t['met'] else '❌'}); "
                 f"Tessera f32 vs ORT f32 {100 * t['tessera_f32_vs_ort_f32']:.0f}%"
                 + (f"; OpenVINO bf16 vs ORT f32 {100 * t['ov_bf16_vs_ort_f32']:.0f}%"
                    if t.get("ov_bf16_vs_ort_f32") is not None else "") + ".")
    enc = next((r for r in report["models"] if r["key"] == ENCODER), None)
    if enc and enc.get("correctness", {}).get("tessera_bf16_vs_tessera_f32"):
        e = enc["correctness"]["tessera_bf16_vs_tessera_f32"][0]
        if "error" not in e:
            L.append(f"- Encoder (BERT-base b1) output, Tessera bf16 vs f32: max abs error {e['max_abs']:.3g}, "
                     f"max relative error {e['max_abs_over_max_ref']:.3g} of the largest |f32| value, "
                     f"max elementwise relative error {e['max_rel_elementwise']:.3g} "
                     "(|d| / (|f32| + 1e-3 max|f32|)).")
    L.append("")
    L.append(f"Wall time of this run: {report.get('wall_s', 0):.0f} s ("
             + ", ".join(f"{rec['key']} {rec.get('wall_s', 0):.0f} s" for rec in report["models"])
             + (f", top-1 {report['top1_wall_s']:.0f} s" if "top1_wall_s" in report else "") + ").\n")
    L.append("Reproduce: `bash scripts/bench_compare.sh` (full run) or `bash scripts/bench_compare.sh --quick`.")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def write_png(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in report["models"] if "ort_f32" in r["runtimes"]]
    if not recs:
        return False
    fig, ax = plt.subplots(figsize=(12, 5))
    w = 0.16
    colors = {"tessera_f32": "#1f77b4", "tessera_bf16": "#6baed6", "ort_f32": "#d62728", "ov_f32": "#2ca02c",
              "ov_bf16": "#98df8a"}
    x = np.arange(len(recs))
    for i, r in enumerate(RUNTIMES):
        vals, lo, hi = [], [], []
        for rec in recs:
            base = rec["runtimes"]["ort_f32"]["median"]
            s = rec["runtimes"].get(r)
            if s is None:
                vals.append(np.nan), lo.append(0), hi.append(0)
                continue
            vals.append(s["median"] / base)
            lo.append((s["median"] - s["q1"]) / base)
            hi.append((s["q3"] - s["median"]) / base)
        bars = ax.bar(x + (i - 2) * w, vals, w, yerr=[lo, hi], capsize=2, label=LABELS[r], color=colors[r])
        for b, rec in zip(bars, recs):
            s = rec["runtimes"].get(r)
            if s is not None:  # above the whisker
                top = s["q3"] / rec["runtimes"]["ort_f32"]["median"]
                ax.text(b.get_x() + b.get_width() / 2, max(top, b.get_height()) + 0.04, f"{s['median']:.1f}",
                        ha="center", va="bottom", fontsize=6, rotation=90)
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax.axhline(0.5, color="gray", lw=0.6, ls=":")
    ax.set_xticks(x)
    ax.set_xticklabels([r["label"].replace(" encoder", "").replace(" decoder", "") for r in recs], fontsize=8,
                       rotation=15)
    ax.set_ylabel("median latency / ORT f32 (lower is better)")
    cpu = report["machine"]["cpu"]["model_name"]
    note = " — QUICK RUN" if report["config"].get("quick") else ""
    ax.set_title(f"Tessera vs ONNX Runtime vs OpenVINO, {report['config']['threads']} threads, {cpu} "
                 f"(bar labels: median ms; whiskers: IQR){note}", fontsize=9)
    ax.legend(fontsize=8, ncol=5, loc="upper center")
    ymax = np.nanmax([rec["runtimes"][r]["q3"] / rec["runtimes"]["ort_f32"]["median"]
                      for rec in recs for r in RUNTIMES if r in rec["runtimes"]])
    ax.set_ylim(0, max(1.3, ymax * 1.25))
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True


def print_ratios(report):
    print()
    print(f"{'model':32s} " + " ".join(f"{k:>22s}" for k, _, _, _ in RATIOS))
    for rec in report["models"]:
        cells = []
        for key, _, _, target in RATIOS:
            q = rec["ratios"].get(key)
            cells.append(f"{'-':>22s}" if q is None else
                         f"{q['value']:>15.2f} {'ok' if q['met'] else 'MISS':>4s}({target:.1f})")
        print(f"{rec['label']:32s} " + " ".join(cells))
    for key, t in report.get("top1", {}).items():
        if "error" not in t:
            print(f"top-1 {key}: Tessera bf16 vs f32 {100 * t['tessera_bf16_vs_tessera_f32']:.0f}% "
                  f"({'ok' if t['met'] else 'MISS'}, >= 99%)")


# ---------------------------------------------------------------------------------------------


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", help="the tessera executable (required unless --render)")
    ap.add_argument("--render", metavar="JSON", help="only rewrite compare.md and compare.png from a compare.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--iters", type=int, default=45, help="timed runs per runtime, latency models (default 45)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per round, latency models (default 3)")
    ap.add_argument("--iters-batch", type=int, default=6, help="timed runs per runtime, batch-32 models (default 6)")
    ap.add_argument("--warmup-batch", type=int, default=1, help="untimed runs per round, batch-32 models (default 1)")
    ap.add_argument("--top1-n", type=int, default=100, help="random inputs for top-1 agreement (default 100)")
    ap.add_argument("--top1-chunk", type=int, default=25, help="batch size of the top-1 runs (default 25)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--models", default="", help="comma-separated keys: " + ",".join(m["key"] for m in MODELS))
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--skip-correctness", action="store_true")
    ap.add_argument("--no-spin", action="store_true",
                    help="idle threads sleep instead of spinning: ORT allow_spinning=0, Tessera OMP_WAIT_POLICY=passive "
                         "(for a shared, busy machine; OpenVINO's TBB pool has no such switch)")
    ap.add_argument("--tessera-env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment for the tessera processes (repeatable), e.g. OMP_WAIT_POLICY=passive")
    ap.add_argument("--quick", action="store_true",
                    help="development run: 1 round, 5 runs (batch-32: 1), 1 warmup, top-1 on 10 inputs")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"), help="folder for compare.{json,md,png}")
    ap.add_argument("--keep-work", action="store_true", help="keep the inputs/outputs folder")
    a = ap.parse_args(argv)
    if a.quick:
        a.rounds, a.iters, a.warmup, a.iters_batch, a.warmup_batch = 1, 5, 1, 1, 1
        a.top1_n, a.top1_chunk = 10, 10
    if a.render:
        with open(a.render) as f:
            report = json.load(f)
        os.makedirs(a.out, exist_ok=True)
        write_md(report, os.path.join(a.out, "compare.md"))
        write_png(report, os.path.join(a.out, "compare.png"))
        print_ratios(report)
        return 0
    if not a.cli:
        print("compare: --cli is required (the tessera executable)", file=sys.stderr)
        return 2
    a.models = [m for m in a.models.split(",") if m]
    a.runtimes = [r for r in a.runtimes.split(",") if r]
    known = {m["key"] for m in MODELS}
    bad = [m for m in a.models if m not in known] + [r for r in a.runtimes if r not in RUNTIMES]
    if bad:
        print(f"compare: unknown model/runtime {bad}; models {sorted(known)}, runtimes {RUNTIMES}", file=sys.stderr)
        return 2
    if not os.access(a.cli, os.X_OK):
        print(f"compare: --cli {a.cli} is not an executable", file=sys.stderr)
        return 2
    a.cli = os.path.abspath(a.cli)
    for kv in a.tessera_env:
        k, eq, v = kv.partition("=")
        if not eq or not k:
            print(f"compare: --tessera-env wants KEY=VALUE, got '{kv}'", file=sys.stderr)
            return 2
        TESSERA_ENV[k] = v
    if a.no_spin:
        TESSERA_ENV.setdefault("OMP_WAIT_POLICY", "passive")

    import onnxruntime
    import openvino

    core = openvino.Core()
    specs = [m for m in MODELS if not a.models or m["key"] in a.models]
    missing = [m["path"] for m in specs if not os.path.isfile(os.path.join(ROOT, m["path"]))]
    if missing:
        print(f"compare: missing models {missing} (scripts/bench_compare.sh generates them)", file=sys.stderr)
        return 2

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpu": cpu_info(), "loadavg_before": loadavg(), "hostname": platform.node()},
        "versions": {"tessera": git_commit(), "onnxruntime": onnxruntime.__version__,
                     "openvino": openvino.__version__, "python": platform.python_version()},
        "config": {k: getattr(a, k) for k in ("threads", "rounds", "iters", "warmup", "iters_batch", "warmup_batch",
                                               "top1_n", "top1_chunk", "seed", "quick", "cli", "no_spin")},
        "models": [],
    }
    report["config"]["tessera_env"] = dict(TESSERA_ENV)
    report["config"]["omp_env"] = {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "KMP_"))}
    t_start = time.time()
    work = tempfile.mkdtemp(prefix="tessera-compare-")
    try:
        for spec in specs:
            t0 = time.time()
            log(f"{spec['key']}: {spec['path']}")
            rec = measure_model(spec, a, core, work)
            rec["wall_s"] = time.time() - t0
            report["models"].append(rec)
            log(f"{spec['key']}: done in {rec['wall_s']:.0f} s; ratios "
                + ", ".join(f"{k} {v['value']:.2f}" for k, v in rec["ratios"].items()))
        if not a.skip_correctness and "tessera_bf16" in a.runtimes:
            t0 = time.time()
            report["top1"] = top1(a, core, work)
            report["top1_wall_s"] = time.time() - t0
    finally:
        if a.keep_work:
            log(f"inputs and outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report["machine"]["loadavg_after"] = loadavg()
    report["wall_s"] = time.time() - t_start

    os.makedirs(a.out, exist_ok=True)
    jpath = os.path.join(a.out, "compare.json")
    with open(jpath + ".tmp", "w") as f:
        json.dump(report, f, indent=1)
    os.replace(jpath + ".tmp", jpath)
    write_md(report, os.path.join(a.out, "compare.md"))
    png = write_png(report, os.path.join(a.out, "compare.png"))
    print_ratios(report)
    log(f"wrote {jpath}, compare.md{', compare.png' if png else ''} in {a.out} ({report['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

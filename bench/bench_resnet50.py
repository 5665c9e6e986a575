#!/usr/bin/env python3
"""Measures one model with ONNX Runtime and with `tessera bench` in the same
run and writes a JSON report (see scripts/bench_resnet50.sh)."""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np


def stats(lat_ms):
    a = np.asarray(lat_ms, dtype=np.float64)
    return {
        "min": float(a.min()),
        "p10": float(np.percentile(a, 10)),
        "median": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "mean": float(a.mean()),
        "max": float(a.max()),
        "iters": int(a.size),
    }


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_ort(model_path, inputs, threads, warmup, iters):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    create_ms = (time.perf_counter() - t0) * 1e3
    feed = {i.name: x for i, x in zip(sess.get_inputs(), inputs)}
    out = None
    for _ in range(warmup):
        out = sess.run(None, feed)
    lat = []
    for _ in range(iters):
        t = time.perf_counter()
        out = sess.run(None, feed)
        lat.append((time.perf_counter() - t) * 1e3)
    return ort.__version__, create_ms, lat, out


def bench_tessera(cli, model_path, threads, warmup, iters):
    cmd = [cli, "bench", model_path, "--threads", str(threads), "--warmup", str(warmup), "--iters", str(iters),
           "--json"]
    print("+ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"bench_resnet50: tessera bench failed with exit {p.returncode}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--model", required=True, help="folder with model.onnx and test_data_set_0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    import onnx
    from onnx import numpy_helper

    name = os.path.basename(os.path.normpath(a.model))
    model_path = os.path.join(a.model, "model.onnx")
    data = os.path.join(a.model, "test_data_set_0")
    inputs, k = [], 0
    while os.path.exists(os.path.join(data, f"input_{k}.pb")):
        inputs.append(numpy_helper.to_array(onnx.load_tensor(os.path.join(data, f"input_{k}.pb"))))
        k += 1
    ref = numpy_helper.to_array(onnx.load_tensor(os.path.join(data, "output_0.pb")))

    print(f"[bench] ONNX Runtime: {a.threads} intra-op threads, warmup {a.warmup}, iters {a.iters}", flush=True)
    ort_version, ort_create_ms, ort_lat, ort_out = bench_ort(model_path, inputs, a.threads, a.warmup, a.iters)
    ort_err = float(np.abs(ort_out[0] - ref).max())
    print(f"[bench] tessera: {a.threads} threads, warmup {a.warmup}, iters {a.iters}", flush=True)
    ts = bench_tessera(a.cli, model_path, a.threads, a.warmup, a.iters)
    check = subprocess.run([a.cli, "run", model_path, "--threads", str(a.threads), "--inputs", data, "--check", data,
                            "--json"], capture_output=True, text=True)
    try:
        ts_check = json.loads(check.stdout).get("check", {})
    except json.JSONDecodeError:
        ts_check = {"passed": False, "error": check.stderr.strip()}

    ort_s = stats(ort_lat)
    ts_s = stats(ts["latencies_ms"]) if ts.get("latencies_ms") else {
        "min": ts["latency_ms"]["min"], "p10": float("nan"), "median": ts["latency_ms"]["p50"],
        "p90": ts["latency_ms"]["p90"], "mean": ts["latency_ms"]["mean"], "max": ts["latency_ms"].get("max"),
        "iters": a.iters}
    ratio = ts_s["median"] / ort_s["median"]
    batch = int(inputs[0].shape[0]) if inputs and inputs[0].ndim else 1

    print(f"[bench] load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    rows = [("onnxruntime " + ort_version, ort_create_ms, ort_s), ("tessera", ts.get("compile_ms", float("nan")), ts_s)]
    print()
    print(f"{name}, batch {batch}, {a.threads} threads, {a.iters} timed runs after {a.warmup} warmup; "
          f"latency in ms")
    print(f"{'runtime':<22}{'setup':>10}{'min':>10}{'p10':>10}{'median':>10}{'p90':>10}{'mean':>10}{'img/s':>10}")
    for name, setup, s in rows:
        print(f"{name:<22}{setup:>10.1f}{s['min']:>10.2f}{s['p10']:>10.2f}{s['median']:>10.2f}{s['p90']:>10.2f}"
              f"{s['mean']:>10.2f}{1000.0 * batch / s['median']:>10.1f}")
    print(f"ratio tessera/ort (median latency): {ratio:.3f}  ({'tessera faster' if ratio < 1 else 'ort faster'})")
    print(f"onnxruntime max abs error vs PyTorch: {ort_err:.3g}")
    per = ts_check.get("outputs") or [{}]
    print(f"tessera check vs PyTorch: {'ok' if ts_check.get('passed') else 'FAILED'}"
          f" (max abs error {per[0].get('max_abs_error', 'n/a')})")

    report = {
        "model": name,
        "model_path": model_path,
        "batch": batch,
        "threads": a.threads,
        "warmup": a.warmup,
        "iters": a.iters,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1min": os.getloadavg()[0]},
        "onnxruntime": {"version": ort_version, "session_create_ms": ort_create_ms, "latency_ms": ort_s,
                        "latencies_ms": ort_lat, "max_abs_error_vs_pytorch": ort_err,
                        "settings": {"provider": "CPUExecutionProvider", "graph_optimization_level": "ORT_ENABLE_ALL",
                                     "intra_op_num_threads": a.threads, "inter_op_num_threads": 1}},
        "tessera": {"compile_ms": ts.get("compile_ms"), "latency_ms": ts_s, "check_vs_pytorch": ts_check,
                    "bench": ts},
        "ratio_tessera_over_ort_median": ratio,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

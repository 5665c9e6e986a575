#!/usr/bin/env python3
"""CPU time per run, 1 thread, of Tessera (f32, bf16), ORT f32 and OpenVINO (f32, bf16) on compare.py's
models: a kernel-efficiency comparison that stays meaningful on a busy machine, where wall-clock
latencies do not (a process that gets 1/5 of a core still uses the same CPU time per run).

    .venv-peers/bin/python bench/compare/cputime.py --cli build/bin/tessera [--models a,b] [--runs N]

Tessera: the children's CPU time (getrusage) of `tessera bench --iters N+1` minus that of `--iters 1`,
divided by N (the compile and the first runs cancel). ORT and OpenVINO: process CPU time over N runs.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare as C  # noqa: E402


def child_cpu_s(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"cputime: `{' '.join(cmd)}` exited {p.returncode}: {p.stderr.strip()[-1000:]}")
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--models", default="resnet50,mobilenet_v2,bert_base,gpt2_small,mlp_wide")
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args(argv)
    import openvino
    import tempfile

    core = openvino.Core()
    work = tempfile.mkdtemp(prefix="tessera-cputime-")
    print(f"{'model':14s} {'T f32':>9s} {'T bf16':>9s} {'ORT f32':>9s} {'OV f32':>9s} {'OV bf16':>9s}   "
          "T32/ORT T16/ORT T16/OV16  (ms CPU per run, 1 thread)")
    for spec in C.MODELS:
        if spec["key"] not in a.models.split(","):
            continue
        path = os.path.join(C.ROOT, spec["path"])
        arrays = C.make_inputs(spec, np.random.default_rng(1))
        d = os.path.join(work, spec["key"])
        C.save_inputs(arrays, d)
        row = {}
        for prec in ("f32", "bf16"):
            base = [os.path.abspath(a.cli), "bench", path, "--threads", "1", "--inputs", d, "--json", "--warmup", "1",
                    "--precision", prec]
            one = child_cpu_s(base + ["--iters", "1"])
            many = child_cpu_s(base + ["--iters", str(a.runs + 1)])
            row["tessera_" + prec] = (many - one) / a.runs * 1e3
        ort_s = C.Ort(path, 1)
        ort_s.time(arrays, 1, 0)
        t = time.process_time()
        ort_s.time(arrays, 0, a.runs)
        row["ort_f32"] = (time.process_time() - t) / a.runs * 1e3
        for prec in ("f32", "bf16"):
            ov_s = C.Ov(core, path, 1, prec)
            ov_s.time(arrays, 1, 0)
            t = time.process_time()
            ov_s.time(arrays, 0, a.runs)
            row["ov_" + prec] = (time.process_time() - t) / a.runs * 1e3
        print(f"{spec['key']:14s} " + " ".join(f"{row[k]:9.2f}" for k in C.RUNTIMES)
              + f"   {row['tessera_f32'] / row['ort_f32']:7.2f} {row['tessera_bf16'] / row['ort_f32']:7.2f} "
              f"{row['tessera_bf16'] / row['ov_bf16']:8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

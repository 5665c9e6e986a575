#!/usr/bin/env python3
"""Diagnostic for a training-step mismatch that bench_train.py reports: the
gradient of every parameter after ONE Tessera step, against PyTorch's.

Runs `tessera train MODEL --steps 1 --no-shuffle --optimizer sgd --lr 1
--checkpoint CK` (plain SGD, lr 1: new = old - grad, so old - new is
Tessera's gradient), reads the safetensors checkpoint, and compares with
torch autograd on the same network (built from the ONNX file as in
bench_train.py), the same initial weights and the same first batch (digits
"train" rows [0, B)). Prints per parameter the max abs difference and the
norm ratio |tessera grad| / |torch grad| (1.0 when they agree).

  .venv-peers/bin/python bench/train/grad_diff.py --cli build/bin/tessera --model cnn

Exit status 0 when every parameter agrees within --tol (max abs), else 1.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train as bt  # noqa: E402


def read_safetensors(path):
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for k, v in header.items():
        if k == "__metadata__" or v["dtype"] not in dtypes:
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(data[s:e], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=os.path.join(bt.ROOT, "build", "bin", "tessera"))
    ap.add_argument("--model", default="cnn", help="models/train_<model>")
    ap.add_argument("--models-dir", default=os.path.join(bt.ROOT, "models"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--extra", action="append", default=[], help="extra argument for tessera train")
    args = ap.parse_args()

    import onnx
    import torch
    import torch.nn as nn
    from onnx import numpy_helper

    onnx_path = os.path.join(args.models_dir, f"train_{args.model}", "model.onnx")
    layers = bt.onnx_chain(onnx_path)
    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(onnx_path).graph.initializer}
    with tempfile.TemporaryDirectory() as tmp:
        ck = os.path.join(tmp, "step1.safetensors")
        cmd = [args.cli, "train", onnx_path, "--data", "digits", "--batch-size", str(args.batch), "--threads",
               str(args.threads), "--steps", "1", "--no-shuffle", "--optimizer", "sgd", "--lr", "1", "--checkpoint",
               ck, "--json"] + args.extra
        print("+ " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            print(p.stderr, file=sys.stderr)
            return 2
        cks = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".safetensors")]
        after = read_safetensors(sorted(cks)[0])

    x, y = bt.load_digits_train(image_shape=any(L["op"] == "conv" for L in layers))
    model = bt.torch_model(layers)
    loss = nn.CrossEntropyLoss()(model(torch.from_numpy(x[:args.batch])), torch.from_numpy(y[:args.batch]))
    loss.backward()
    mods = [m for m in model if any(True for _ in m.parameters(recurse=False))]
    named = [L for L in layers if "names" in L]
    ok = True
    print(f"{'parameter':24s} {'|torch grad|max':>15s} {'max|diff|':>11s} {'norm ratio':>11s}")
    for L, m in zip(named, mods):
        for pname, t in zip(L["names"], (m.weight, m.bias)):
            if not pname:
                continue
            if pname not in after:
                print(f"{pname:24s} not in the checkpoint")
                ok = False
                continue
            g = t.grad.numpy()
            tg = (init[pname].astype(np.float64) - after[pname].astype(np.float64)).reshape(g.shape)
            diff = float(np.abs(tg - g).max())
            ratio = float(np.linalg.norm(tg) / max(np.linalg.norm(g), 1e-30))
            good = diff <= args.tol
            ok &= good
            print(f"{pname:24s} {np.abs(g).max():15.3e} {diff:11.3e} {ratio:11.4f} {'' if good else ' MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

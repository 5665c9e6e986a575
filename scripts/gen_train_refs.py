#!/usr/bin/env python3
"""Generates the training models and PyTorch 1.13 reference results that
tests/unit/training/test_torch_match.cpp compares Tessera's training against.

    .venv/bin/python scripts/gen_train_refs.py --out models [--force]

Writes
    OUT/train_mlp/model.onnx      MLP 64-128-128-10 (ReLU); input "x" f32 [batch, 64], output "logits" [batch, 10]
    OUT/train_mlp/torch_ref.json  optimizer/data settings, 50 reference losses, accuracy after 20 epochs
    OUT/train_cnn/model.onnx      Conv-BN-ReLU-MaxPool x2, Flatten, Gemm; input "x" f32 [batch, 1, 8, 8]
    OUT/train_cnn/torch_ref.json
    OUT/train_block/model.onnx    nn.TransformerEncoderLayer(32, 4, 64, dropout 0, batch_first), input "x"
                                  f32 [2, 8, 32], output "out"
    OUT/train_block/x.npy, w.npy  the input and the loss weights: loss = sum(out * w)
    OUT/train_block/grads.json    {ONNX initializer name: d loss / d param, flat, row-major} from autograd
    OUT/train_block/meta.json     x, w, out (flat) and the loss, for consumers without an .npy reader

Conventions the C++ side relies on:
  * Initial weights: torch.manual_seed(0) before each model is built; the ONNX initializers hold exactly
    those weights, under the PyTorch parameter names ("fc1.weight", "bn1.running_mean", ...).
    do_constant_folding=False keeps every weight a named initializer (Linear weights are read through
    Gemm transB=1 or Transpose, never pre-transposed).
  * The exporter de-duplicates initializers with equal values and reads the copies through Identity
    nodes (e.g. bn1.running_var = Identity(bn1.weight), both all ones); this script turns every such
    Identity back into its own initializer, so BatchNorm running statistics never alias a parameter.
  * The CNN is exported in eval mode with TrainingMode.PRESERVE (BatchNormalization training_mode=0,
    not folded into Conv); its reference curve is computed in train() mode (batch statistics,
    running statistics updated with momentum 0.1 and the unbiased variance).
  * Data: scikit-learn's digits.csv.gz in file order (the file runtime/datasets.h LoadDigits reads:
    $TESSERA_DIGITS, else the python3-sklearn install); the 5th, 10th, 15th, ... row of each class
    is "test" (355 rows), the other 1442 rows "train", both in file order; features pixel / 16 as
    float32, labels int64. Reference step k (0-based) uses train rows [k*32, k*32 + 32) modulo 1442
    (TakeRows wraps). Loss: mean softmax cross-entropy. The recorded
    loss of step k is the loss of the forward pass that produced step k's gradients (before the update).
  * Single thread, deterministic algorithms; a second run with outputs present and this script
    unchanged (its SHA-256 is stored in each output folder as .gen_hash) does nothing.
Files are written into a temporary folder and renamed into place.
"""
import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper

OPSET = 17
BATCH = 32
STEPS = 50
N_TRAIN = 1442  # runtime/datasets.cpp LoadDigits' train split
EPOCHS = 20
NAMES = ["train_mlp", "train_cnn", "train_block"]
FILES = {
    "train_mlp": ["model.onnx", "torch_ref.json"],
    "train_cnn": ["model.onnx", "torch_ref.json"],
    "train_block": ["model.onnx", "x.npy", "w.npy", "grads.json", "meta.json"],
}
HASH_FILE = ".gen_hash"

torch = None  # imported only when something must be generated


def _script_hash():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _up_to_date(folder, name, digest):
    if not all(os.path.isfile(os.path.join(folder, f)) for f in FILES[name]):
        return False
    try:
        with open(os.path.join(folder, HASH_FILE)) as f:
            return f.read().strip() == digest
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Data


def _digits_path():
    cands = []
    if os.environ.get("TESSERA_DIGITS"):
        cands.append(os.environ["TESSERA_DIGITS"])
    cands.append("/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz")
    try:
        import sklearn  # noqa: F401  (the .venv may hold its own copy)
        cands.append(os.path.join(os.path.dirname(sklearn.__file__), "datasets", "data", "digits.csv.gz"))
    except ImportError:
        pass
    for c in cands:
        if os.path.isfile(c):
            return c
    raise FileNotFoundError("digits.csv.gz not found (set TESSERA_DIGITS or apt-get install python3-sklearn); "
                            f"looked in: {', '.join(cands)}")


def load_digits():
    """(features f32 [1797, 64] = pixel / 16, labels i64 [1797]): the N_TRAIN "train" rows in file order,
    then the 355 "test" rows (the 5th, 10th, ... row of each class) in file order."""
    with gzip.open(_digits_path(), "rt") as f:
        raw = np.loadtxt(f, delimiter=",", dtype=np.float64)
    feats = (raw[:, :64].astype(np.float32) / np.float32(16.0)).astype(np.float32)
    labels = raw[:, 64].astype(np.int64)
    seen = np.zeros(10, dtype=np.int64)
    test = np.zeros(len(labels), dtype=bool)
    for i, c in enumerate(labels):
        test[i] = seen[c] % 5 == 4
        seen[c] += 1
    order = np.concatenate([np.flatnonzero(~test), np.flatnonzero(test)])
    assert int((~test).sum()) == N_TRAIN
    return feats[order], labels[order]


def _rows(k):
    """Train rows of reference step k: [k*32, k*32+32) wrapping at N_TRAIN."""
    return np.arange(k * BATCH, k * BATCH + BATCH) % N_TRAIN


# ---------------------------------------------------------------------------------------------
# Models


def _modules():
    nn = torch.nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(64, 128)
            self.fc2 = nn.Linear(128, 128)
            self.fc3 = nn.Linear(128, 10)

        def forward(self, x):
            x = torch.relu(self.fc1(x))
            x = torch.relu(self.fc2(x))
            return self.fc3(x)

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(16)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(32)
            self.fc = nn.Linear(128, 10)

        def forward(self, x):
            x = torch.nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
            x = torch.nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
            return self.fc(torch.flatten(x, 1))

    return MLP, CNN


def _unalias_identities(proto):
    """Replaces Identity(initializer) nodes by a copy of the initializer named as the Identity's output."""
    g = proto.graph
    inits = {t.name: t for t in g.initializer}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and len(n.input) == 1 and n.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            g.initializer.append(t)
            inits[t.name] = t
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)


def _export(model, dummy, path, out_name, dynamic):
    kw = {}
    if dynamic:
        kw["dynamic_axes"] = {"x": {0: "batch"}, out_name: {0: "batch"}}
    # Traced with gradients enabled: under no_grad, 1.13's TransformerEncoderLayer takes its fused fast
    # path (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
    with torch.enable_grad():
        # PRESERVE: the exporter's EVAL mode would fold BatchNormalization into Conv.
        torch.onnx.export(model, (dummy,), path, opset_version=OPSET, input_names=["x"], output_names=[out_name],
                          do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE, **kw)
    proto = onnx.load(path)
    _unalias_identities(proto)
    onnx.checker.check_model(proto)
    ins = [i.name for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if ins != ["x"] or [o.name for o in proto.graph.output] != [out_name]:
        raise RuntimeError(f"{path}: unexpected graph inputs {ins} / outputs {[o.name for o in proto.graph.output]}")
    onnx.save(proto, path)
    return proto


def _check_initializers(proto, model):
    """Every ONNX initializer equals the torch parameter/buffer of the same name."""
    state = model.state_dict()
    names = set()
    for t in proto.graph.initializer:
        if t.name not in state:
            continue  # exporter constants (none expected with constant folding off)
        names.add(t.name)
        if not np.array_equal(numpy_helper.to_array(t), state[t.name].detach().numpy()):
            raise RuntimeError(f"initializer {t.name} differs from the torch value")
    missing = [n for n, _ in model.named_parameters() if n not in names]
    if missing:
        raise RuntimeError(f"parameters missing from the ONNX initializers: {missing}")


def _train_curve(model, feats, labels, opt, image_shape):
    model.train()
    losses = []
    for k in range(STEPS):
        idx = _rows(k)
        x = torch.from_numpy(feats[idx])
        if image_shape:
            x = x.reshape(-1, 1, 8, 8)
        y = torch.from_numpy(labels[idx])
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        if k == 0:  # BatchNorm running statistics after the first step (momentum, unbiased variance)
            running = {n: [float(v) for v in t.flatten()] for n, t in model.state_dict().items() if "running_" in n}
    return losses, running


def _accuracy_after_epochs(model, feats, labels, opt, image_shape):
    """Informational: EPOCHS epochs over the train split, a fresh permutation each epoch (torch.Generator
    seeded 1), floor(1442/32) = 45 batches per epoch (the last partial batch is dropped, as `tessera train`
    does); then eval() accuracy on the test split."""
    gen = torch.Generator().manual_seed(1)
    shape = (-1, 1, 8, 8) if image_shape else (-1, 64)
    tr_x, tr_y = torch.from_numpy(feats[:N_TRAIN]).reshape(shape), torch.from_numpy(labels[:N_TRAIN])
    te_x, te_y = torch.from_numpy(feats[N_TRAIN:]).reshape(shape), torch.from_numpy(labels[N_TRAIN:])
    per_epoch = N_TRAIN // BATCH
    last_loss = float("nan")
    for _ in range(EPOCHS):
        model.train()
        perm = torch.randperm(N_TRAIN, generator=gen)
        for b in range(per_epoch):
            idx = perm[b * BATCH:(b + 1) * BATCH]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(tr_x[idx]), tr_y[idx])
            loss.backward()
            opt.step()
            last_loss = float(loss.item())
    model.eval()
    with torch.no_grad():
        acc = float((model(te_x).argmax(1) == te_y).float().mean().item())
    return {"epochs": EPOCHS, "shuffle": "torch.randperm, torch.Generator().manual_seed(1), one per epoch",
            "batches_per_epoch": per_epoch, "test_accuracy": acc, "final_train_loss": last_loss}


def gen_classifier(name, tmp, feats, labels):
    MLP, CNN = _modules()
    image = name == "train_cnn"
    torch.manual_seed(0)
    model = CNN() if image else MLP()
    init_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    dummy = torch.zeros(BATCH, 1, 8, 8) if image else torch.zeros(BATCH, 64)
    proto = _export(model, dummy, os.path.join(tmp, "model.onnx"), "logits", dynamic=True)
    _check_initializers(proto, model)

    if image:
        opt_cfg = {"kind": "adamw", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
                   "weight_decay": 0.01, "amsgrad": False, "bias_correction": True,
                   "decoupled_weight_decay": "p *= 1 - lr * weight_decay, before the Adam step"}
        make_opt = lambda ps: torch.optim.AdamW(ps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    else:
        opt_cfg = {"kind": "sgd", "lr": 0.05, "momentum": 0.9, "dampening": 0.0, "nesterov": False,
                   "weight_decay": 0.0, "first_step_buffer": "grad (PyTorch: buf = grad on the first step)"}
        make_opt = lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)

    losses, running = _train_curve(model, feats, labels, make_opt(model.parameters()), image)
    # Eval-mode loss on the test split after the 50 steps: checks the running statistics too.
    model.eval()
    with torch.no_grad():
        te_x = torch.from_numpy(feats[N_TRAIN:]).reshape((-1, 1, 8, 8) if image else (-1, 64))
        eval_loss = float(torch.nn.functional.cross_entropy(model(te_x), torch.from_numpy(labels[N_TRAIN:])).item())
    model.load_state_dict(init_state)
    info = _accuracy_after_epochs(model, feats, labels, make_opt(model.parameters()), image)

    ref = {
        "model": name,
        "torch_version": torch.__version__,
        "optimizer": opt_cfg,
        "lr": opt_cfg["lr"],
        "lr_schedule": "constant",
        "batch_size": BATCH,
        "steps": STEPS,
        "loss": {"kind": "cross_entropy", "reduction": "mean", "label_smoothing": 0.0},
        "data": {"dataset": "digits", "split": "train", "rows": N_TRAIN, "features": "pixel / 16, float32",
                 "input_shape": [BATCH, 1, 8, 8] if image else [BATCH, 64],
                 "batches": "step k uses train rows [k*32, k*32+32) modulo 1442, file order (train split of LoadDigits)"},
        "params": [n for n, _ in model.named_parameters()],
        # Lets a consumer check its batches before blaming the training: step 0's feature sum (f64) and labels.
        "data_check": {"step0_feature_sum": float(feats[_rows(0)].astype(np.float64).sum()),
                       "step0_labels": [int(v) for v in labels[_rows(0)]],
                       "step49_labels": [int(v) for v in labels[_rows(STEPS - 1)]]},
        "losses": losses,
        "eval_after_steps": {"split": "test", "rows": int(len(labels) - N_TRAIN), "loss": eval_loss},
        "running_after_step1": running,
        "after_epochs": info,
    }
    if image:
        ref["batchnorm"] = {"mode": "train (batch statistics, biased variance for normalization)",
                            "momentum": 0.1, "epsilon": 1e-5, "running_var": "unbiased"}
    with open(os.path.join(tmp, "torch_ref.json"), "w") as f:
        json.dump(ref, f, indent=1)
    return f"losses {losses[0]:.4f} -> {losses[-1]:.4f}, {EPOCHS}-epoch test accuracy {info['test_accuracy']:.4f}"


def gen_block(tmp):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0,
                                             batch_first=True)
    with torch.no_grad():
        # Zero biases and unit LayerNorm weights would hide a mix-up of parameters: perturb them.
        for n, p in layer.named_parameters():
            if "bias" in n or "norm" in n:
                p.add_(0.1 * torch.randn(p.shape))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 32, generator=gen)
    w = torch.randn(2, 8, 32, generator=gen)
    # eval(): no Dropout nodes in the export. With gradients enabled, 1.13 takes the unfused path
    # (the fast path needs no_grad), so autograd and the export compute the same thing.
    layer.eval()
    proto = _export(layer, x, os.path.join(tmp, "model.onnx"), "out", dynamic=False)
    _check_initializers(proto, layer)

    out = layer(x)
    loss = (out * w).sum()
    loss.backward()
    with torch.no_grad():
        fused = layer(x)  # the export's path must agree with the autograd path
    if not torch.allclose(fused, out, atol=1e-5):
        raise RuntimeError("train_block: no_grad forward differs from the autograd forward")
    params = dict(layer.named_parameters())
    grads = {}
    for t in proto.graph.initializer:
        if t.name in params:
            grads[t.name] = [float(v) for v in params[t.name].grad.reshape(-1).tolist()]
    if set(grads) != set(params):
        raise RuntimeError(f"train_block: gradients for {sorted(grads)} but parameters {sorted(params)}")
    with open(os.path.join(tmp, "grads.json"), "w") as f:
        json.dump(grads, f)
    np.save(os.path.join(tmp, "x.npy"), x.numpy())
    np.save(os.path.join(tmp, "w.npy"), w.numpy())
    meta = {"torch_version": torch.__version__, "shape": [2, 8, 32], "loss": float(loss.item()),
            "loss_formula": "sum(out * w)", "x": x.reshape(-1).tolist(), "w": w.reshape(-1).tolist(),
            "out": out.detach().reshape(-1).tolist()}
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f)
    return f"loss {loss.item():.6f}, {len(grads)} parameter gradients"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models", help="output folder (default: models)")
    ap.add_argument("--force", action="store_true", help="regenerate even when up to date")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    digest = _script_hash()
    data = None
    for name in NAMES:
        folder = os.path.join(args.out, name)
        if not args.force and _up_to_date(folder, name, digest):
            print(f"[gen_train_refs] {name}: up to date, skipped")
            continue
        global torch
        if torch is None:
            import torch as _torch
            torch = _torch
            torch.set_num_threads(1)
            torch.use_deterministic_algorithms(True)
        t0 = time.time()
        tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=args.out)
        try:
            if name == "train_block":
                msg = gen_block(tmp)
            else:
                if data is None:
                    data = load_digits()
                msg = gen_classifier(name, tmp, *data)
            with open(os.path.join(tmp, HASH_FILE), "w") as f:
                f.write(digest + "\n")
            os.chmod(tmp, 0o755)
            if os.path.exists(folder):
                shutil.rmtree(folder)
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        print(f"[gen_train_refs] {name}: {msg} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

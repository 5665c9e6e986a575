#!/usr/bin/env python3
"""Generates the model zoo: real architectures exported at ONNX opset 13 and 17.

    .venv/bin/python scripts/gen_zoo.py --out models/zoo [--only NAME[,NAME...]] [--force] [--list]

NAME is a model (resnet18: both opsets) or one export (resnet18_op13). For each export this writes
    OUT/NAME_opV/model.onnx                      torch.onnx.export at opset V, constant folding, eval mode
    OUT/NAME_opV/test_data_set_K/input_J.pb      ONNX TensorProto, one per graph input, in graph-input order
    OUT/NAME_opV/test_data_set_K/output_J.pb     PyTorch's outputs for those inputs, in graph-output order
Models exported with symbolic dims (the transformer encoders/decoder) get several data sets, each at a
different batch/sequence size; the others get test_data_set_0 only.

Weights are torchvision's (or PyTorch's) random initialization from a fixed seed; BatchNorm running
statistics and affine parameters are perturbed from a fixed seed so that folding them is tested.
Image models run at 1x3x64x64 with 10 classes to keep CI fast and the files small.
A model whose files already exist is skipped; --force regenerates. Files are written into a temporary
folder and renamed into place, so an interrupted run never leaves a half-written model that looks complete.
"""
import argparse
import math
import os
import shutil
import sys
import tempfile
import time

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_models import _complete, _save_pb  # noqa: E402  (shared file layout helpers)

torch = None  # imported on first use: a run with every model present stays fast

OPSETS = (13, 17)
IMAGE = (1, 3, 64, 64)
CLASSES = 10

TORCHVISION = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1",
               "shufflenet_v2_x0_5", "efficientnet_b0", "densenet121", "regnet_y_400mf"]
NAMES = TORCHVISION + ["vit_b_16", "vit_16", "gpt_decoder", "bert_encoder_torch", "bert_encoder_manual", "lstm"]


def export_names():
    return [f"{n}_op{v}" for n in NAMES for v in OPSETS]


# ---------------------------------------------------------------------------------------------
# Models


def _builders():
    """Imports torch and returns {name: build()}; build() gives a dict with
    module, datasets (a list of input tuples; the first one is traced), in_names, out_names,
    dynamic_axes (or None) and grad (export and reference with autograd on: keeps
    nn.MultiheadAttention off its fused inference path, which has no ONNX export)."""
    global torch
    import torch as _torch

    torch = _torch

    def _randn(gen, *shape):
        return torch.randn(*shape, generator=gen)

    def _perturb_batchnorm(model, seed):
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    c = m.num_features
                    m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                    m.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
                    m.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
                    m.bias.copy_(torch.randn(c, generator=gen) * 0.1)

    def _unit_logits(model, linear, inputs):
        # Several of these nets start with tiny logits (mobilenet_v3_small's are ~0.006), where
        # atol 1e-4 alone would pass a wrong result; scale the last Linear so the outputs' mean
        # magnitude is 1. Models already at that scale are left alone.
        model.eval()
        with torch.no_grad():
            mean = float(model(*inputs).abs().mean())
            if mean < 0.5:
                linear.weight.mul_(1.0 / mean)
                if linear.bias is not None:
                    linear.bias.mul_(1.0 / mean)

    def _last_linear(model):
        return [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]

    def _spec(model, datasets, in_names, out_names, dynamic_axes=None, grad=False):
        return {"module": model, "datasets": datasets, "in_names": in_names, "out_names": out_names,
                "dynamic_axes": dynamic_axes, "grad": grad}

    def torchvision_builder(name, seed):
        def build():
            import torchvision

            torch.manual_seed(seed)
            model = getattr(torchvision.models, name)(weights=None, num_classes=CLASSES)
            _perturb_batchnorm(model, 500 + seed)
            gen = torch.Generator().manual_seed(600 + seed)
            x = _randn(gen, *IMAGE)
            if name == "squeezenet1_1":  # its classifier is a 1x1 Conv, not a Linear
                conv = model.classifier[1]
                _unit_logits(model, conv, (x,))
            else:
                _unit_logits(model, _last_linear(model), (x,))
            return _spec(model, [(x,)], ["input"], ["output"])
        return build

    def build_vit():
        # ViT with 16x16 patches (the B/16 layout) on a 64x64 image: 4x4 patches + class token.
        # Depth and widths are cut (4 layers, d 192, 3 heads, mlp 768: the ViT-Ti sizes) because
        # vit_b_16 itself is 86M parameters (344 MB per export).
        from torchvision.models.vision_transformer import VisionTransformer

        torch.manual_seed(40)
        model = VisionTransformer(image_size=64, patch_size=16, num_layers=4, num_heads=3, hidden_dim=192,
                                  mlp_dim=768, num_classes=CLASSES)
        with torch.no_grad():  # the class token and the head start at zero; make them non-trivial
            for prm in model.parameters():
                prm.add_(torch.randn(prm.shape) * 0.02)
        gen = torch.Generator().manual_seed(640)
        x = _randn(gen, *IMAGE)
        _unit_logits(model, _last_linear(model), (x,))
        return _spec(model, [(x,)], ["input"], ["output"], grad=True)

    def build_vit_b_16():
        # torchvision's vit_b_16 itself (12 layers, d 768, 86M parameters) at a 64x64 image:
        # 4x4 patches + the class token keep it fast; the weights make each export 344 MB.
        import torchvision

        torch.manual_seed(41)
        model = torchvision.models.vit_b_16(weights=None, image_size=64, num_classes=CLASSES)
        with torch.no_grad():
            for prm in model.parameters():
                prm.add_(torch.randn(prm.shape) * 0.02)
        gen = torch.Generator().manual_seed(641)
        x = _randn(gen, *IMAGE)
        _unit_logits(model, _last_linear(model), (x,))
        return _spec(model, [(x,)], ["input"], ["output"], grad=True)

    # ---- transformers: 2 layers, d 64, 4 heads, symbolic batch and seq ----------------------

    class ManualAttention(torch.nn.Module):
        """Multi-head attention written out: Q/K/V Linear, split heads, QK^T, scale, additive
        mask, softmax, weighted sum, merge heads, output Linear."""

        def __init__(self, d, heads):
            super().__init__()
            self.h, self.dh = heads, d // heads
            self.q = torch.nn.Linear(d, d)
            self.k = torch.nn.Linear(d, d)
            self.v = torch.nn.Linear(d, d)
            self.out = torch.nn.Linear(d, d)

        def forward(self, x, mask):
            b, s, d = x.shape
            q = self.q(x).view(b, s, self.h, self.dh).transpose(1, 2)
            k = self.k(x).view(b, s, self.h, self.dh).transpose(1, 2)
            v = self.v(x).view(b, s, self.h, self.dh).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + mask
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
            return self.out(ctx.transpose(1, 2).reshape(b, s, d))

    class BertLayer(torch.nn.Module):
        """Post-norm encoder layer (BERT): x = LN(x + attn(x)); x = LN(x + FFN(x))."""

        def __init__(self, d, heads, ff):
            super().__init__()
            self.attn = ManualAttention(d, heads)
            self.ln1 = torch.nn.LayerNorm(d, eps=1e-12)
            self.fc1 = torch.nn.Linear(d, ff)
            self.fc2 = torch.nn.Linear(ff, d)
            self.ln2 = torch.nn.LayerNorm(d, eps=1e-12)

        def forward(self, x, mask):
            x = self.ln1(x + self.attn(x, mask))
            return self.ln2(x + self.fc2(torch.nn.functional.gelu(self.fc1(x))))

    class BertManual(torch.nn.Module):
        """Token + position embeddings, embedding LayerNorm, 2 post-norm layers, a pooler-free
        output. Inputs: ids [batch, seq] int64 and attention_mask [batch, seq] int64 (1 keeps a
        token, 0 is padding), turned into the additive mask (1 - m) * -10000 as in BERT."""

        def __init__(self, layers=2, d=64, heads=4, ff=128, vocab=100, max_seq=32):
            super().__init__()
            self.tok = torch.nn.Embedding(vocab, d)
            self.pos = torch.nn.Embedding(max_seq, d)
            self.ln = torch.nn.LayerNorm(d, eps=1e-12)
            self.layers = torch.nn.ModuleList([BertLayer(d, heads, ff) for _ in range(layers)])
            self.register_buffer("positions", torch.arange(max_seq).view(1, max_seq))

        def forward(self, ids, attention_mask):
            x = self.ln(self.tok(ids) + self.pos(self.positions[:, :ids.shape[1]]))
            mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
            for layer in self.layers:
                x = layer(x, mask)
            return x

    class GptDecoder(torch.nn.Module):
        """Pre-norm decoder: embeddings, 2 blocks of causal hand-written attention + GELU MLP,
        final LayerNorm, LM head. The causal mask is sliced to the input's length."""

        def __init__(self, layers=2, d=64, heads=4, vocab=100, max_seq=32):
            super().__init__()
            self.tok = torch.nn.Embedding(vocab, d)
            self.pos = torch.nn.Embedding(max_seq, d)
            self.attn = torch.nn.ModuleList([ManualAttention(d, heads) for _ in range(layers)])
            self.ln1 = torch.nn.ModuleList([torch.nn.LayerNorm(d) for _ in range(layers)])
            self.ln2 = torch.nn.ModuleList([torch.nn.LayerNorm(d) for _ in range(layers)])
            self.fc1 = torch.nn.ModuleList([torch.nn.Linear(d, 4 * d) for _ in range(layers)])
            self.fc2 = torch.nn.ModuleList([torch.nn.Linear(4 * d, d) for _ in range(layers)])
            self.ln = torch.nn.LayerNorm(d)
            self.head = torch.nn.Linear(d, vocab, bias=False)
            self.register_buffer("positions", torch.arange(max_seq).view(1, max_seq))
            causal = torch.triu(torch.full((max_seq, max_seq), -1e4), diagonal=1)
            self.register_buffer("causal", causal.view(1, 1, max_seq, max_seq))

        def forward(self, ids):
            s = ids.shape[1]
            x = self.tok(ids) + self.pos(self.positions[:, :s])
            mask = self.causal[:, :, :s, :s]
            for attn, ln1, ln2, fc1, fc2 in zip(self.attn, self.ln1, self.ln2, self.fc1, self.fc2):
                x = x + attn(ln1(x), mask)
                x = x + fc2(torch.nn.functional.gelu(fc1(ln2(x))))
            return self.head(self.ln(x))

    class BertTorch(torch.nn.Module):
        """nn.TransformerEncoder (post-norm, batch_first, GELU, 2 layers) with a key padding mask
        [batch, seq] (bool, True = padding)."""

        def __init__(self, layers=2, d=64, heads=4, ff=128):
            super().__init__()
            layer = torch.nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff, dropout=0.0,
                                                     activation="gelu", batch_first=True)
            self.enc = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

        def forward(self, x, pad_mask):
            return self.enc(x, src_key_padding_mask=pad_mask)

    class LstmModel(torch.nn.Module):
        """2-layer batch-first LSTM over [batch, seq, 16], then Linear on every step."""

        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(16, 32, num_layers=2, batch_first=True)
            self.fc = torch.nn.Linear(32, 8)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.fc(y)

    def _perturb_all(model, scale=0.02):
        # Zero biases and unit LayerNorm scales make some bugs invisible: perturb every parameter.
        with torch.no_grad():
            for prm in model.parameters():
                prm.add_(torch.randn(prm.shape) * scale)

    # (batch, seq) of each data set of a dynamic model, all different: the first is traced.
    # tests/models/zoo/dynamic_shapes_test.cpp runs sets 0-2 in one session; set 3 is batch 1,
    # checked on its own (a size 1 dim is where shape folding tends to go wrong).
    SIZES = [(2, 16), (3, 24), (2, 7), (1, 5)]

    def _ids(gen, b, s, vocab=100):
        return torch.randint(0, vocab, (b, s), generator=gen, dtype=torch.int64)

    def build_bert_manual():
        torch.manual_seed(41)
        model = BertManual()
        _perturb_all(model)
        gen = torch.Generator().manual_seed(641)
        sets = []
        for b, s in SIZES:
            m = torch.ones(b, s, dtype=torch.int64)
            if b > 1:
                m[1, s - s // 4:] = 0  # the second sequence ends in padding
            sets.append((_ids(gen, b, s), m))
        dyn = {"ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
               "y": {0: "batch", 1: "seq"}}
        return _spec(model, sets, ["ids", "attention_mask"], ["y"], dyn)

    def build_gpt():
        torch.manual_seed(42)
        model = GptDecoder()
        _perturb_all(model)
        gen = torch.Generator().manual_seed(642)
        sets = [(_ids(gen, b, s),) for b, s in SIZES]
        dyn = {"ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
        return _spec(model, sets, ["ids"], ["logits"], dyn)

    def build_bert_torch():
        torch.manual_seed(43)
        model = BertTorch()
        _perturb_all(model)
        gen = torch.Generator().manual_seed(643)
        sets = []
        for b, s in SIZES:
            pad = torch.zeros(b, s, dtype=torch.bool)
            if b > 1:
                pad[1, s - s // 4:] = True
            sets.append((_randn(gen, b, s, 64), pad))
        dyn = {"x": {0: "batch", 1: "seq"}, "pad_mask": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}
        return _spec(model, sets, ["x", "pad_mask"], ["y"], dyn, grad=True)

    def build_lstm():
        torch.manual_seed(44)
        model = LstmModel()
        gen = torch.Generator().manual_seed(644)
        x = _randn(gen, 2, 10, 16)
        _unit_logits(model, model.fc, (x,))
        return _spec(model, [(x,)], ["x"], ["y"])

    models = {name: torchvision_builder(name, 20 + i) for i, name in enumerate(TORCHVISION)}
    models.update({"vit_b_16": build_vit_b_16, "vit_16": build_vit, "gpt_decoder": build_gpt, "bert_encoder_torch": build_bert_torch,
                   "bert_encoder_manual": build_bert_manual, "lstm": build_lstm})
    return models


# ---------------------------------------------------------------------------------------------
# Export


def _reference(module, inputs, grad):
    with torch.set_grad_enabled(grad):
        out = module(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().numpy() for o in outs]


def generate(name, opset, out_root, spec):
    """Exports spec's module at `opset` into out_root/NAME_opV with every data set."""
    module = spec["module"]
    module.eval()
    folder_name = f"{name}_op{opset}"
    tmp = tempfile.mkdtemp(prefix=f".{folder_name}.", dir=out_root)
    try:
        onnx_path = os.path.join(tmp, "model.onnx")
        traced = spec["datasets"][0]
        with torch.set_grad_enabled(spec["grad"]):
            torch.onnx.export(module, traced, onnx_path, opset_version=opset, do_constant_folding=True,
                              input_names=spec["in_names"], output_names=spec["out_names"],
                              dynamic_axes=spec["dynamic_axes"])
        proto = onnx.load(onnx_path)
        onnx.checker.check_model(proto)
        graph_inputs = [i.name for i in proto.graph.input]
        graph_outputs = [o.name for o in proto.graph.output]
        if graph_inputs != spec["in_names"] or graph_outputs != spec["out_names"]:
            raise RuntimeError(f"{folder_name}: exported graph has inputs {graph_inputs} and outputs "
                               f"{graph_outputs}, expected {spec['in_names']} and {spec['out_names']}")
        for k, inputs in enumerate(spec["datasets"]):
            data = os.path.join(tmp, f"test_data_set_{k}")
            os.makedirs(data)
            for j, (n, t) in enumerate(zip(spec["in_names"], inputs)):
                _save_pb(os.path.join(data, f"input_{j}.pb"), t.numpy(), n)
            for j, (n, a) in enumerate(zip(spec["out_names"], _reference(module, inputs, spec["grad"]))):
                _save_pb(os.path.join(data, f"output_{j}.pb"), a, n)
        os.chmod(tmp, 0o755)
        final = os.path.join(out_root, folder_name)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/zoo", help="output folder (default: models/zoo)")
    ap.add_argument("--only", default="", help="comma-separated models or exports (default: all)")
    ap.add_argument("--force", action="store_true", help="regenerate exports that already exist")
    ap.add_argument("--list", action="store_true", help="print the export names and exit")
    args = ap.parse_args(argv)

    if args.list:
        print("\n".join(export_names()))
        return 0
    wanted = [n for n in args.only.split(",") if n] if args.only else list(NAMES)
    jobs = []  # (model, opset)
    for w in wanted:
        if w in NAMES:
            jobs += [(w, v) for v in OPSETS]
        elif w in export_names():
            base, v = w.rsplit("_op", 1)
            jobs.append((base, int(v)))
        else:
            print(f"gen_zoo: error: unknown model or export '{w}'; models: {', '.join(NAMES)} "
                  f"(add _op13 or _op17 for one export)", file=sys.stderr)
            return 2
    os.makedirs(args.out, exist_ok=True)
    builders, specs = None, {}
    t_all = time.time()
    for name, opset in jobs:
        folder = os.path.join(args.out, f"{name}_op{opset}")
        if not args.force and _complete(folder):
            print(f"[gen_zoo] {name}_op{opset}: present, skipped")
            continue
        if builders is None:
            builders = _builders()
            torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        t0 = time.time()
        if name not in specs:  # one build per model: both opsets export the same weights
            specs[name] = builders[name]()
        generate(name, opset, args.out, specs[name])
        print(f"[gen_zoo] {name}_op{opset}: written to {folder} ({time.time() - t0:.1f} s)", flush=True)
    print(f"[gen_zoo] done in {time.time() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

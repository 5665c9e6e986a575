#!/usr/bin/env python3
"""Generates the test models and their reference data.

    .venv/bin/python scripts/gen_models.py --out models [--only NAME[,NAME...]] [--force]

For each model NAME this writes
    OUT/NAME/model.onnx                      torch.onnx.export, opset 17, constant folding, eval mode
    OUT/NAME/test_data_set_0/input_K.pb      ONNX TensorProto, one per graph input, in graph-input order
    OUT/NAME/test_data_set_0/output_K.pb     PyTorch's outputs for those inputs, in graph-output order
Weights and inputs come from fixed seeds, so two runs produce the same files.
A model whose files already exist is skipped (so a second run is fast); --force
regenerates. Files are written into a temporary folder and renamed into place,
so an interrupted run never leaves a half-written model that looks complete.
"""
import argparse
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper

torch = None  # imported on first use: a run with every model present stays fast

OPSET = 17


# ---------------------------------------------------------------------------------------------
# Models


NAMES = ["mlp", "mlp_dynamic", "cnn", "transformer", "resnet18", "resnet50", "bert_tiny", "gpt_tiny"]
# Benchmark-size models (hundreds of MB): generated only when named with --only.
OPT_IN_NAMES = ["bert_base", "gpt2_small", "mlp_wide"]


def _builders():
    """Imports torch and returns {name: build()}; build() gives (module, inputs, input names,
    output names, dynamic_axes)."""
    global torch
    import torch as _torch

    torch = _torch

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(784, 256)
            self.fc2 = torch.nn.Linear(256, 128)
            self.fc3 = torch.nn.Linear(128, 10)

        def forward(self, x):
            x = torch.relu(self.fc1(x))
            x = torch.relu(self.fc2(x))
            return self.fc3(x)

    class CNN(torch.nn.Module):
        """conv-bn-relu-maxpool twice, global average pool, linear."""

        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 16, 3, padding=1)
            self.bn1 = torch.nn.BatchNorm2d(16)
            self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
            self.bn2 = torch.nn.BatchNorm2d(32)
            self.pool = torch.nn.MaxPool2d(2)
            self.gap = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(32, 10)

        def forward(self, x):
            x = self.pool(torch.relu(self.bn1(self.conv1(x))))
            x = self.pool(torch.relu(self.bn2(self.conv2(x))))
            x = torch.flatten(self.gap(x), 1)
            return self.fc(x)

    class EncoderBlock(torch.nn.Module):
        """One pre-norm transformer encoder block, written out by hand so the export
        is made of plain ops (LayerNormalization, MatMul, Softmax, Erf-GELU, ...).

        Inputs: x [B, S, D] and pad_mask [B, 1, 1, S], an additive mask (0 keeps a
        key, -1e4 drops it). A causal mask is built in (a constant after folding)."""

        def __init__(self, d=64, heads=4, seq=16, hidden=256):
            super().__init__()
            self.d, self.h, self.dh = d, heads, d // heads
            self.ln1 = torch.nn.LayerNorm(d)
            self.qkv = torch.nn.Linear(d, 3 * d)
            self.proj = torch.nn.Linear(d, d)
            self.ln2 = torch.nn.LayerNorm(d)
            self.fc1 = torch.nn.Linear(d, hidden)
            self.fc2 = torch.nn.Linear(hidden, d)
            causal = torch.triu(torch.full((seq, seq), -1e4), diagonal=1)
            self.register_buffer("causal", causal.view(1, 1, seq, seq))

        def forward(self, x, pad_mask):
            b, s, d = x.shape
            h = self.ln1(x)
            qkv = self.qkv(h).reshape(b, s, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # [B, H, S, Dh]
            scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.dh))
            scores = scores + self.causal + pad_mask
            attn = torch.softmax(scores, dim=-1)
            ctx = torch.matmul(attn, v).transpose(1, 2).reshape(b, s, d)
            x = x + self.proj(ctx)
            h = self.ln2(x)
            h = self.fc2(torch.nn.functional.gelu(self.fc1(h)))
            return x + h

    def _randn(gen, *shape):
        return torch.randn(*shape, generator=gen)

    def build_mlp():
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(100)
        return MLP(), (_randn(gen, 4, 784),), ["input"], ["output"], None

    def build_mlp_dynamic():
        torch.manual_seed(1)
        gen = torch.Generator().manual_seed(101)
        dyn = {"input": {0: "batch"}, "output": {0: "batch"}}
        return MLP(), (_randn(gen, 3, 784),), ["input"], ["output"], dyn

    def build_cnn():
        torch.manual_seed(2)
        model = CNN()
        # Non-trivial running statistics, so folding BatchNorm is actually tested.
        gen = torch.Generator().manual_seed(7)
        for bn in (model.bn1, model.bn2):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen) * 0.1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            bn.weight.data.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            bn.bias.data.copy_(torch.randn(bn.num_features, generator=gen) * 0.1)
        gen = torch.Generator().manual_seed(102)
        return model, (_randn(gen, 1, 3, 32, 32),), ["input"], ["output"], None

    def build_transformer():
        torch.manual_seed(3)
        model = EncoderBlock()
        gen = torch.Generator().manual_seed(103)
        x = _randn(gen, 2, 16, 64)
        pad = torch.zeros(2, 1, 1, 16)
        pad[1, :, :, 12:] = -1e4  # the second sequence has 4 padding positions
        return model, (x, pad), ["x", "pad_mask"], ["y"], None

    def _torchvision(name, seed):
        import torchvision

        torch.manual_seed(seed)
        model = getattr(torchvision.models, name)(weights=None)
        gen = torch.Generator().manual_seed(200 + seed)
        return model, (_randn(gen, 1, 3, 224, 224),), ["input"], ["output"], None

    def build_resnet18():
        return _torchvision("resnet18", 0)

    def build_resnet50():
        return _torchvision("resnet50", 0)


    # ---- transformer benchmarks / tests (bert_*, gpt_*) ------------------------------------

    class BertEncoder(torch.nn.Module):
        """nn.TransformerEncoder (post-norm, batch_first, GELU): what torch 1.13's exporter makes
        of nn.MultiheadAttention. Inputs: x [B, S, D] and pad_mask [B, S] (bool, True = padding
        key), the src_key_padding_mask."""

        def __init__(self, layers, d, heads, ff, seq):
            super().__init__()
            layer = torch.nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff, dropout=0.0,
                                                     activation="gelu", batch_first=True)
            # enable_nested_tensor=False: the nested-tensor fast path is not exportable.
            self.enc = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            # An all-zero additive attention mask: passing a mask keeps eval-mode inference off
            # the fused fast path (aten::_transformer_encoder_layer_fwd has no ONNX export).
            self.register_buffer("no_mask", torch.zeros(seq, seq))

        def forward(self, x, pad_mask):
            return self.enc(x, mask=self.no_mask, src_key_padding_mask=pad_mask)

    class GptBlock(torch.nn.Module):
        """Pre-norm decoder block with causal attention written out by hand."""

        def __init__(self, d, heads, seq):
            super().__init__()
            self.h, self.dh = heads, d // heads
            self.ln1 = torch.nn.LayerNorm(d)
            self.q = torch.nn.Linear(d, d)
            self.k = torch.nn.Linear(d, d)
            self.v = torch.nn.Linear(d, d)
            self.proj = torch.nn.Linear(d, d)
            self.ln2 = torch.nn.LayerNorm(d)
            self.fc1 = torch.nn.Linear(d, 4 * d)
            self.fc2 = torch.nn.Linear(4 * d, d)
            causal = torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1)
            self.register_buffer("causal", causal.view(1, 1, seq, seq))

        def forward(self, x):
            b, s, d = x.shape
            h = self.ln1(x)
            # K is reshaped to [B, S, H, Dh] and transposed straight to [B, H, Dh, S].
            q = self.q(h).reshape(b, s, self.h, self.dh).transpose(1, 2)
            k = self.k(h).reshape(b, s, self.h, self.dh).permute(0, 2, 3, 1)
            v = self.v(h).reshape(b, s, self.h, self.dh).transpose(1, 2)
            scores = torch.matmul(q, k) / math.sqrt(self.dh)
            scores = scores + self.causal[:, :, :s, :s]
            attn = torch.softmax(scores, dim=-1)
            ctx = torch.matmul(attn, v).transpose(1, 2).reshape(b, s, d)
            x = x + self.proj(ctx)
            return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))

    class Gpt(torch.nn.Module):
        """Token + position embeddings (Gather), decoder blocks, final LayerNorm, LM head."""

        def __init__(self, layers, d, heads, seq, vocab):
            super().__init__()
            self.tok = torch.nn.Embedding(vocab, d)
            self.pos = torch.nn.Embedding(seq, d)
            self.blocks = torch.nn.ModuleList([GptBlock(d, heads, seq) for _ in range(layers)])
            self.ln = torch.nn.LayerNorm(d)
            self.head = torch.nn.Linear(d, vocab, bias=False)
            self.register_buffer("positions", torch.arange(seq).view(1, seq))

        def forward(self, ids):
            x = self.tok(ids) + self.pos(self.positions[:, :ids.shape[1]])
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln(x))

    def _bert(seed, layers, d, heads, ff, seq, batch):
        torch.manual_seed(seed)
        model = BertEncoder(layers, d, heads, ff, seq)
        # nn.TransformerEncoder deep-copies one layer, so every layer starts with the same
        # weights (and zero attention biases, unit LayerNorm scales); perturb every parameter
        # so the layers differ and no parameter is trivial.
        with torch.no_grad():
            for prm in model.parameters():
                prm.add_(torch.randn(prm.shape) * 0.02)
        gen = torch.Generator().manual_seed(300 + seed)
        x = _randn(gen, batch, seq, d)
        pad = torch.zeros(batch, seq, dtype=torch.bool)
        if batch > 1:
            pad[1, seq - seq // 4:] = True  # the second sequence ends in padding
        return model, (x, pad), ["x", "pad_mask"], ["y"], None

    def _gpt(seed, layers, d, heads, seq, batch, vocab):
        torch.manual_seed(seed)
        model = Gpt(layers, d, heads, seq, vocab)
        gen = torch.Generator().manual_seed(300 + seed)
        ids = torch.randint(0, vocab, (batch, seq), generator=gen, dtype=torch.int64)
        return model, (ids,), ["ids"], ["logits"], None

    def build_bert_tiny():
        return _bert(10, layers=2, d=64, heads=4, ff=128, seq=16, batch=2)

    def build_gpt_tiny():
        return _gpt(11, layers=2, d=64, heads=4, seq=16, batch=2, vocab=100)

    def build_bert_base():
        # BERT-base encoder sizes (no embeddings): 12 layers, d 768, 12 heads, ff 3072.
        return _bert(12, layers=12, d=768, heads=12, ff=3072, seq=128, batch=1)

    def build_gpt2_small():
        # GPT-2 small sizes, except the vocabulary: 8192 instead of 50257 keeps the file
        # (embedding + LM head) small; the blocks are the real size.
        return _gpt(13, layers=12, d=768, heads=12, seq=128, batch=1, vocab=8192)

    def build_mlp_wide():
        # bench/compare's MLP: 784-1024-1024-10 with ReLU, batch 64.
        torch.manual_seed(14)
        model = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024),
                                    torch.nn.ReLU(), torch.nn.Linear(1024, 10))
        gen = torch.Generator().manual_seed(314)
        return model, (_randn(gen, 64, 784),), ["input"], ["output"], None


    MODELS = {
        "mlp": build_mlp,
        "mlp_dynamic": build_mlp_dynamic,
        "cnn": build_cnn,
        "transformer": build_transformer,
        "resnet18": build_resnet18,
        "resnet50": build_resnet50,
        "bert_tiny": build_bert_tiny,
        "gpt_tiny": build_gpt_tiny,
        "bert_base": build_bert_base,
        "gpt2_small": build_gpt2_small,
        "mlp_wide": build_mlp_wide,
    }

    return MODELS


# ---------------------------------------------------------------------------------------------
# Export


# Models whose ONNX export keeps BatchNormalization as its own node.
KEEP_BATCHNORM = {"cnn"}


def _complete(folder):
    data = os.path.join(folder, "test_data_set_0")
    return (os.path.isfile(os.path.join(folder, "model.onnx"))
            and os.path.isfile(os.path.join(data, "input_0.pb"))
            and os.path.isfile(os.path.join(data, "output_0.pb")))


def _save_pb(path, array, name):
    tensor = numpy_helper.from_array(np.ascontiguousarray(array), name)
    with open(path, "wb") as f:
        f.write(tensor.SerializeToString())


def generate(name, out_root, builders):
    model, inputs, in_names, out_names, dynamic_axes = builders[name]()
    model.eval()
    with torch.no_grad():
        ref = model(*inputs)
    refs = ref if isinstance(ref, (tuple, list)) else (ref,)

    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=out_root)
    try:
        onnx_path = os.path.join(tmp, "model.onnx")
        extra = {"do_constant_folding": True}
        if name in KEEP_BATCHNORM:
            # The exporter's eval mode folds BatchNormalization into Conv; PRESERVE keeps
            # the BatchNormalization nodes (inference form) so the runtime's own kernel is tested.
            extra["training"] = torch.onnx.TrainingMode.PRESERVE
            extra["do_constant_folding"] = False  # the exporter warns otherwise in this mode
        with torch.no_grad():
            torch.onnx.export(model, inputs, onnx_path, opset_version=OPSET,
                              input_names=in_names, output_names=out_names, dynamic_axes=dynamic_axes, **extra)
        proto = onnx.load(onnx_path)
        onnx.checker.check_model(proto)
        graph_inputs = [i.name for i in proto.graph.input]
        graph_outputs = [o.name for o in proto.graph.output]
        if graph_inputs != in_names or graph_outputs != out_names:
            raise RuntimeError(f"{name}: exported graph has inputs {graph_inputs} and outputs {graph_outputs}, "
                               f"expected {in_names} and {out_names}")
        data = os.path.join(tmp, "test_data_set_0")
        os.makedirs(data)
        for k, (n, t) in enumerate(zip(in_names, inputs)):
            _save_pb(os.path.join(data, f"input_{k}.pb"), t.numpy(), n)
        for k, (n, t) in enumerate(zip(out_names, refs)):
            _save_pb(os.path.join(data, f"output_{k}.pb"), t.numpy(), n)
        os.chmod(tmp, 0o755)
        final = os.path.join(out_root, name)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models", help="output folder (default: models)")
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    ap.add_argument("--force", action="store_true", help="regenerate models that already exist")
    args = ap.parse_args(argv)

    names = [n for n in args.only.split(",") if n] if args.only else list(NAMES)
    unknown = [n for n in names if n not in NAMES + OPT_IN_NAMES]
    if unknown:
        print(f"gen_models: error: unknown model(s) {', '.join(unknown)}; known: {', '.join(NAMES + OPT_IN_NAMES)}",
              file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    builders = None
    for name in names:
        folder = os.path.join(args.out, name)
        if not args.force and _complete(folder):
            print(f"[gen_models] {name}: present, skipped")
            continue
        if builders is None:
            builders = _builders()
            torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        t0 = time.time()
        generate(name, args.out, builders)
        print(f"[gen_models] {name}: written to {folder} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

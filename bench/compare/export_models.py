#!/usr/bin/env python3
"""Exports the model variants bench/compare needs beyond scripts/gen_models.py's models.

    .venv/bin/python bench/compare/export_models.py --out models/bench [--force]

Runs with the test environment's PyTorch (1.13), like gen_models.py, and reuses its builders (and
gen_zoo.py's) so the weights are the same fixed-seed ones. Writes OUT/NAME/model.onnx for
    resnet50_b32       gen_models' resnet50, batch 32 (static shapes)
    resnet50_dyn       gen_models' resnet50, symbolic batch dim "batch" (top-1 agreement runs)
    bert_base_b32      gen_models' bert_base (12 layers, d 768, seq 128), batch 32 (static)
    mobilenet_v2       torchvision mobilenet_v2 at 1x3x224x224, 1000 classes (gen_zoo's recipe:
                       perturbed BatchNorm statistics, last Linear scaled to unit logits)
    mobilenet_v2_dyn   the same with a symbolic batch dim
models/zoo/mobilenet_v2_op17 is the same network at 64x64 with 10 classes (CI-sized), which is
not the MobileNetV2 the benchmark asks for. A model whose model.onnx exists is skipped.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

NAMES = ["resnet50_b32", "resnet50_dyn", "bert_base_b32", "mobilenet_v2", "mobilenet_v2_dyn"]


def _specs(torch):
    """{name: build()}; build() gives (module, example inputs, input names, output names, dynamic_axes)."""
    import gen_models
    import gen_zoo

    gm = gen_models._builders()
    gen = torch.Generator().manual_seed(2024)

    def resnet50(batch, dynamic):
        def build():
            model = gm["resnet50"]()[0]
            x = torch.randn(batch, 3, 224, 224, generator=gen)
            dyn = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None
            return model, (x,), ["input"], ["output"], dyn
        return build

    def bert_b32():
        model = gm["bert_base"]()[0]
        x = torch.randn(32, 128, 768, generator=gen)
        pad = torch.zeros(32, 128, dtype=torch.bool)
        return model, (x, pad), ["x", "pad_mask"], ["y"], None

    def mobilenet(dynamic):
        def build():
            # gen_zoo's builder reads IMAGE and CLASSES when it runs: the full-size network.
            gen_zoo.IMAGE, gen_zoo.CLASSES = (1, 3, 224, 224), 1000
            spec = gen_zoo._builders()["mobilenet_v2"]()
            dyn = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None
            return spec["module"], spec["datasets"][0], ["input"], ["output"], dyn
        return build

    return {"resnet50_b32": resnet50(32, False), "resnet50_dyn": resnet50(1, True), "bert_base_b32": bert_b32,
            "mobilenet_v2": mobilenet(False), "mobilenet_v2_dyn": mobilenet(True)}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "bench"))
    ap.add_argument("--only", default="", help="comma-separated names (default: all)")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or NAMES
    bad = [n for n in names if n not in NAMES]
    if bad:
        print(f"export_models: unknown {bad}; known: {NAMES}", file=sys.stderr)
        return 2
    todo = [n for n in names if args.force or not os.path.isfile(os.path.join(args.out, n, "model.onnx"))]
    if not todo:
        return 0
    import onnx
    import torch

    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    specs = _specs(torch)
    for name in todo:
        t0 = time.time()
        model, inputs, in_names, out_names, dyn = specs[name]()
        model.eval()
        tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=args.out)
        try:
            path = os.path.join(tmp, "model.onnx")
            with torch.no_grad():
                torch.onnx.export(model, inputs, path, opset_version=17, do_constant_folding=True,
                                  input_names=in_names, output_names=out_names, dynamic_axes=dyn)
            onnx.checker.check_model(onnx.load(path))
            os.chmod(tmp, 0o755)
            final = os.path.join(args.out, name)
            if os.path.exists(final):
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        print(f"[export_models] {name}: written to {final} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

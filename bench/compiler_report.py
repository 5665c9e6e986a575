#!/usr/bin/env python3
"""Compiler report: node counts before/after the O2 pipeline and arena size vs
its lower bound, per model, from `tessera inspect --json`.

    .venv/bin/python bench/compiler_report.py [--cli build/bin/tessera] [MODEL_NAME ...]

Models are folders under models/ (generate big ones with
`.venv/bin/python scripts/gen_models.py --out models --only resnet50,bert_base`).
Writes bench/results/compiler_report.json and .md and prints the table.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def inspect(cli, model, opt_level):
    out = subprocess.run([cli, "inspect", model, "--json", "--opt-level", str(opt_level)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "bin", "tessera"))
    ap.add_argument("models", nargs="*", default=["resnet50", "bert_base"])
    args = ap.parse_args()
    rows = []
    for name in args.models:
        path = os.path.join(ROOT, "models", name, "model.onnx")
        if not os.path.exists(path):
            print(f"skip {name}: {path} is missing", file=sys.stderr)
            continue
        j = inspect(args.cli, path, 2)
        imported = j["imported_nodes"]
        optimized = j["optimized_nodes"]
        dev = j["devices"][0]
        ratio = dev["arena_bytes"] / dev["arena_lower_bound"] if dev["arena_lower_bound"] else 1.0
        rows.append({
            "model": name,
            "imported_nodes": imported,
            "o2_nodes": optimized,
            "node_reduction": 1 - optimized / imported,
            "arena_bytes": dev["arena_bytes"],
            "arena_lower_bound": dev["arena_lower_bound"],
            "arena_over_lower_bound": ratio,
            "op_counts": j["op_counts"],
            "passes": j["passes"],
        })
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "compiler_report.json"), "w") as f:
        json.dump(rows, f, indent=2)
    lines = ["| model | imported nodes | O2 nodes | fewer | arena MiB | lower bound MiB | arena / bound |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['imported_nodes']} | {r['o2_nodes']} | {100 * r['node_reduction']:.1f}% | "
                     f"{r['arena_bytes'] / 2**20:.2f} | {r['arena_lower_bound'] / 2**20:.2f} | "
                     f"{r['arena_over_lower_bound']:.3f} |")
    table = "\n".join(lines)
    with open(os.path.join(ROOT, "bench", "results", "compiler_report.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()

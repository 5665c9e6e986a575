#!/usr/bin/env python3
"""Turns tessera_microbench's Google Benchmark JSON into a markdown table.

    format_micro.py bench/results/micro.json bench/results/micro.md

One row per case: median wall time, its coefficient of variation over the
repetitions, the median rate (GFLOP/s or GB/s), the median fraction of the
measured peak the case is compared with (fp32 FMA, bf16 dot product, or the
DRAM copy bandwidth for memory-bound kernels) and, for memory-bound kernels,
the fraction of a memcpy of the same bytes. Works with
--benchmark_report_aggregates_only=true (median/mean/stddev[/cv] aggregates)
and with single runs (no spread then). Cases that failed or were skipped are
listed under the table with their error message.
"""
import json
import sys


def case_name(b):
    name = b.get("run_name") or b.get("name", "?")
    return name[: -len("/real_time")] if name.endswith("/real_time") else name


def fmt(v, digits=3):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}g}"


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        data = json.load(f)
    ctx = data.get("context", {})
    rows = {}   # case -> {aggregate name -> entry}
    order = []
    errors = {}
    for b in data.get("benchmarks", []):
        name = case_name(b)
        if b.get("error_occurred"):
            errors[name] = b.get("error_message", "error")
            continue
        if name not in rows:
            rows[name] = {}
            order.append(name)
        kind = b.get("aggregate_name") if b.get("run_type") == "aggregate" else "run"
        if kind == "run":
            rows[name].setdefault("runs", []).append(b)
        else:
            rows[name][kind] = b

    out = []
    out.append("# Tessera CPU microbenchmarks\n")
    out.append(f"- CPU: {ctx.get('cpu_brand', '?')} ({ctx.get('num_cpus', '?')} CPUs, "
               f"{ctx.get('mhz_per_cpu', '?')} MHz), threads: {ctx.get('tessera_threads', '?')}, "
               f"date: {ctx.get('date', '?')}")
    out.append(f"- measured peak fp32: {ctx.get('peak_fp32_gflops', '?')} GFLOP/s ({ctx.get('peak_fp32_how', '')})")
    out.append(f"- measured peak bf16: {ctx.get('peak_bf16_gflops', '?')} GFLOP/s ({ctx.get('peak_bf16_how', '')})")
    out.append(f"- memory copy: {ctx.get('copy_gbps', '?')} GB/s ({ctx.get('copy_how', '')})")
    reps = max([b.get("repetitions", 1) for b in data.get("benchmarks", [])] or [1])
    load = ctx.get("load_avg") or []
    ncpu = ctx.get("num_cpus") or 0
    out.append(f"- repetitions per case: {reps}; load average at start: "
               + (", ".join(f"{x:.2f}" for x in load) if load else "?"))
    if load and ncpu and load[0] > 0.5 * ncpu:
        out.append(f"- **warning: the machine was busy (1-minute load {load[0]:.1f} on {ncpu} CPUs); "
                   "multi-threaded timings wait for descheduled threads and are not representative. "
                   "Re-run on an idle machine.**")
    out.append("")
    out.append("Kernels are called through the CPU backend's kernel factories (one-node views, weights "
               "prepacked at creation), not through a Session. frac_peak: compute-bound cases divide by the "
               "measured fp32 FMA peak (bf16 cases by the bf16 dot-product peak), memory-bound cases (GB/s) by "
               "the measured DRAM copy bandwidth (above 1 when the tensors stay in cache); vs memcpy: GB/s "
               "divided by a memcpy of the same bytes on the same threads (1.0 = as fast as copying the "
               "tensors).")
    out.append("")
    out.append("| case | median | CV | GFLOP/s | GB/s | frac_peak | vs memcpy | compared with |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for name in order:
        r = rows[name]
        med = r.get("median")
        cv = None
        if med is None and r.get("runs"):
            runs = sorted(r["runs"], key=lambda b: b["real_time"])
            med = runs[len(runs) // 2]
        if med is None:
            continue
        if "cv" in r:
            cv = r["cv"].get("real_time")
        elif "mean" in r and "stddev" in r and r["mean"].get("real_time"):
            cv = r["stddev"]["real_time"] / r["mean"]["real_time"]
        unit = med.get("time_unit", "ns")
        label = med.get("label", "")
        if not label and r.get("runs"):
            label = r["runs"][0].get("label", "")
        if not label and "mean" in r:
            label = r["mean"].get("label", "")
        out.append("| {} | {} {} | {} | {} | {} | {} | {} | {} |".format(
            name, fmt(med.get("real_time")), unit,
            "-" if cv is None else f"{100 * cv:.1f}%",
            fmt(med.get("GFLOP/s")), fmt(med.get("GB/s")), fmt(med.get("frac_peak"), 2),
            fmt(med.get("frac_memcpy"), 2), label))
    if errors:
        out.append("")
        out.append("Not measured:")
        for name, msg in errors.items():
            out.append(f"- {name}: {msg}")
    out.append("")
    with open(argv[2], "w") as f:
        f.write("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

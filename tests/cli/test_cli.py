#!/usr/bin/env python3
"""Tests of the `tessera` command line, one case per invocation:

    test_cli.py --cli PATH/tessera --models MODELS_DIR --work WORK_DIR CASE

Exit 0: pass; 1: fail (the reason is printed); 77: skipped (a generated model
or a Python package the case needs is missing; the reason is printed).
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys


class Skip(Exception):
    pass


CLI = MODELS = WORK = None


def tessera(*args, timeout=600, env=None):
    """Runs the CLI (with `env` added to the environment); returns (exit code, stdout, stderr)."""
    cmd = [CLI, *map(str, args)]
    print("+ " + " ".join(cmd))
    full_env = dict(os.environ, **env) if env else None
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    if p.stdout:
        print("  stdout: " + p.stdout[:2000].replace("\n", "\n          "))
    if p.stderr:
        print("  stderr: " + p.stderr[:2000].replace("\n", "\n          "))
    print(f"  exit {p.returncode}")
    assert p.returncode >= 0, f"killed by signal {-p.returncode}"
    return p.returncode, p.stdout, p.stderr


def expect(rc, want, what):
    assert rc == want, f"{what}: exit {rc}, expected {want}"


def expect_error_line(err, *needles):
    assert "tessera: error: " in err, f"no 'tessera: error: ' line on stderr: {err!r}"
    for n in needles:
        assert n in err, f"error message does not mention {n!r}: {err!r}"


def model(name):
    path = os.path.join(MODELS, name, "model.onnx")
    data = os.path.join(MODELS, name, "test_data_set_0")
    if not (os.path.isfile(path) and os.path.isfile(os.path.join(data, "input_0.pb"))
            and os.path.isfile(os.path.join(data, "output_0.pb"))):
        raise Skip(f"{path} or its test data is missing (run: .venv/bin/python scripts/gen_models.py --out models)")
    return path, data


def need(module):
    try:
        return __import__(module)
    except ImportError:
        raise Skip(f"Python package '{module}' is not installed in {sys.executable}")


def workdir(case):
    d = os.path.join(WORK, case)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def load_pb(path):
    onnx = need("onnx")
    from onnx import numpy_helper
    return numpy_helper.to_array(onnx.load_tensor(path))


def save_pb(path, array, name):
    need("onnx")
    from onnx import numpy_helper
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def parse_json(text, what):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise AssertionError(f"{what} is not valid JSON ({e}): {text[:500]!r}")


def strings_in(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from strings_in(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings_in(v)


# ---------------------------------------------------------------------------------------------
# Cases


def case_no_args():
    rc, out, err = tessera()
    expect(rc, 2, "no arguments")
    assert "usage" in err, "no usage on stderr"
    assert out == "", "usage errors must not print on stdout"


def case_help():
    rc, out, _ = tessera("--help")
    expect(rc, 0, "--help")
    for cmd in ("run", "compile", "bench", "devices", "inspect"):
        assert cmd in out, f"--help does not list '{cmd}'"
        rc, out2, _ = tessera(cmd, "--help")
        expect(rc, 0, f"{cmd} --help")
        assert out2.startswith(f"usage: tessera {cmd}"), f"{cmd} --help: {out2[:80]!r}"


def case_version():
    rc, out, _ = tessera("--version")
    expect(rc, 0, "--version")
    assert re.match(r"^tessera \d+\.\d+\.\d+", out), f"--version printed {out!r}"


def case_unknown_command():
    rc, _, err = tessera("frobnicate")
    expect(rc, 2, "unknown command")
    expect_error_line(err, "frobnicate")
    rc, _, err = tessera("--frobnicate")
    expect(rc, 2, "unknown top-level flag")
    expect_error_line(err, "--frobnicate")


def case_unknown_flag():
    for cmd in ("run", "compile", "bench", "inspect", "devices"):
        rc, _, err = tessera(cmd, "whatever.onnx", "--no-such-flag") if cmd != "devices" else \
            tessera(cmd, "--no-such-flag")
        expect(rc, 2, f"{cmd} with an unknown flag")
        expect_error_line(err, "--no-such-flag")
    rc, _, err = tessera("run", "whatever.onnx", "--inputs")
    expect(rc, 2, "flag without its value")
    expect_error_line(err, "--inputs")
    rc, _, err = tessera("run", "a.onnx", "b.onnx")
    expect(rc, 2, "two models")


def case_missing_model():
    path = os.path.join(WORK, "no", "such", "model.onnx")
    for cmd in (("run",), ("inspect",), ("bench",), ("compile", "-o", os.path.join(WORK, "x.tplan"))):
        rc, _, err = tessera(cmd[0], path, *cmd[1:])
        expect(rc, 2, f"{cmd[0]} with a missing model")
        expect_error_line(err, path)


def case_corrupt_model():
    d = workdir("corrupt_model")
    rng = random.Random(1234)
    path = os.path.join(d, "random.onnx")
    with open(path, "wb") as f:
        f.write(bytes(rng.randrange(256) for _ in range(4096)))
    rc, _, err = tessera("run", path)
    expect(rc, 2, "random bytes as a model")
    expect_error_line(err, path)
    empty = os.path.join(d, "empty.onnx")
    open(empty, "wb").close()
    rc, _, err = tessera("run", empty)
    expect(rc, 2, "an empty model file")
    expect_error_line(err)


def case_corrupt_plan():
    path, _ = model("mlp")
    d = workdir("corrupt_plan")
    plan = os.path.join(d, "mlp.tplan")
    rc, _, _ = tessera("compile", path, "-o", plan)
    expect(rc, 0, "compile")
    blob = open(plan, "rb").read()
    assert len(blob) > 64, f"plan is only {len(blob)} bytes"
    truncated = os.path.join(d, "truncated.tplan")
    with open(truncated, "wb") as f:
        f.write(blob[: len(blob) // 2])
    rc, _, err = tessera("run", truncated)
    expect(rc, 2, "a truncated plan")
    expect_error_line(err)
    flipped = bytearray(blob)
    for i in range(len(blob) // 2, len(blob) // 2 + 64):
        flipped[i] ^= 0x5A
    bad = os.path.join(d, "flipped.tplan")
    with open(bad, "wb") as f:
        f.write(bytes(flipped))
    rc, _, err = tessera("run", bad)
    expect(rc, 2, "a plan with corrupted bytes")
    expect_error_line(err)


def _check_case(mutate):
    np = need("numpy")
    path, data = model("mlp")
    d = workdir("check_" + mutate.__name__)
    shutil.copy(os.path.join(data, "input_0.pb"), d)
    ref = load_pb(os.path.join(data, "output_0.pb"))
    save_pb(os.path.join(d, "output_0.pb"), mutate(np, ref), "output")
    return tessera("run", path, "--inputs", d, "--check", d)


def case_check_mismatch():
    def shifted(np, ref):
        out = ref.copy()
        out[0, 3] += 0.5  # one element off
        return out
    rc, out, err = _check_case(shifted)
    expect(rc, 1, "--check against a wrong output")
    assert "FAIL" in out, "the failing output is not reported"
    assert re.search(r"max abs err 0\.5", out), "max abs error of the wrong element not reported"
    expect_error_line(err)
    # The same data with a tolerance that covers the error passes.
    path, _ = model("mlp")
    d = os.path.join(WORK, "check_shifted")
    rc, _, _ = tessera("run", path, "--inputs", d, "--check", d, "--atol", "0.6")
    expect(rc, 0, "--check with --atol 0.6")
    rc, _, _ = tessera("run", path, "--inputs", d, "--check", d, "--rtol", "0", "--atol", "0.4")
    expect(rc, 1, "--check with --atol 0.4")


def case_check_shape_mismatch():
    def wrong_shape(np, ref):
        return ref[:, :5].copy()
    rc, out, _ = _check_case(wrong_shape)
    expect(rc, 1, "--check against an output of another shape")
    assert "shape" in out, "shape mismatch not reported"

    def wrong_dtype(np, ref):
        return ref.astype(np.float64)
    rc, out, _ = _check_case(wrong_dtype)
    expect(rc, 1, "--check against an output of another dtype")
    assert "dtype" in out, "dtype mismatch not reported"


def case_check_missing_reference():
    path, data = model("mlp")
    d = workdir("check_missing_reference")
    shutil.copy(os.path.join(data, "input_0.pb"), d)
    rc, _, err = tessera("run", path, "--inputs", d, "--check", d)
    expect(rc, 2, "--check with no output_0.pb")
    expect_error_line(err, "output_0.pb")


def case_missing_inputs_dir():
    path, _ = model("mlp")
    d = workdir("missing_inputs_dir")
    rc, _, err = tessera("run", path, "--inputs", os.path.join(d, "nope"))
    expect(rc, 2, "--inputs with a missing folder")
    expect_error_line(err, "nope")
    rc, _, err = tessera("run", path, "--inputs", d)
    expect(rc, 2, "--inputs with no input_0.pb")
    expect_error_line(err, "input_0.pb")
    # An input of the wrong shape is invalid input, caught before running.
    np = need("numpy")
    save_pb(os.path.join(d, "input_0.pb"), np.zeros((2, 784), np.float32), "input")
    rc, _, err = tessera("run", path, "--inputs", d)
    expect(rc, 2, "--inputs with a wrongly shaped input")
    expect_error_line(err, "shape")


def case_devices_json():
    rc, out, err = tessera("devices", "--json")
    expect(rc, 0, "devices --json")
    j = parse_json(out, "devices --json")
    assert any(s == "cpu" or s.startswith("cpu") for s in strings_in(j)), f"no 'cpu' in {out[:500]}"
    rc, out, _ = tessera("devices")
    expect(rc, 0, "devices")
    assert "cpu" in out, "plain 'devices' does not list cpu"


def case_devices_unusable():
    # A file that is not a shared library, where plugins are searched: listed as unusable, with why.
    d = workdir("devices_unusable")
    with open(os.path.join(d, "libtessera_backend_broken.so"), "wb") as f:
        f.write(b"not an ELF file")
    env = {"TESSERA_BACKEND_PATH": d}
    rc, out, _ = tessera("devices", env=env)
    expect(rc, 0, "devices with a broken plugin")
    assert "broken" in out and "unusable" in out, "the broken plugin is not reported as unusable"
    assert "cpu" in out, "the cpu backend is no longer listed"
    rc, out, _ = tessera("devices", "--json", env=env)
    expect(rc, 0, "devices --json with a broken plugin")
    backends = parse_json(out, "devices --json")["backends"]
    broken = [b for b in backends if "broken" in json.dumps(b)]
    assert broken and broken[0].get("usable") is False, f"broken plugin entry: {broken}"


def case_dump_after():
    path, _ = model("mlp")
    d = workdir("dump_after")
    rc, out, err = tessera("compile", path, "-o", os.path.join(d, "x.tplan"), "--dump-after", "fold_constants")
    expect(rc, 0, "compile --dump-after fold_constants")
    assert "fold_constants" in err and "Gemm" in err, "no graph dump on stderr"
    assert "Gemm" not in out, "the graph dump went to stdout"
    rc, _, err = tessera("compile", path, "-o", os.path.join(d, "y.tplan"), "--dump-after", "no_such_pass")
    expect(rc, 2, "--dump-after with an unknown pass")
    expect_error_line(err, "no_such_pass")


def case_inspect():
    path, _ = model("mlp")
    rc, out, _ = tessera("inspect", path)
    expect(rc, 0, "inspect")
    for word in ("input", "output", "Gemm", "cpu", "[4, 784]"):
        assert word in out, f"inspect output does not mention {word!r}"


def case_inspect_json():
    path, _ = model("mlp")
    rc, out, _ = tessera("inspect", path, "--json")
    expect(rc, 0, "inspect --json")
    j = parse_json(out, "inspect --json")
    assert isinstance(j, dict), "inspect --json is not an object"
    assert "Gemm" in out, "the description does not mention the MLP's Gemm nodes"


def case_run_json():
    path, data = model("mlp")
    rc, out, _ = tessera("run", path, "--inputs", data, "--check", data, "--json")
    expect(rc, 0, "run --json")
    j = parse_json(out, "run --json")
    assert isinstance(j, dict), "not one JSON object"
    assert len(j["outputs"]) == 1 and j["outputs"][0]["name"] == "output", j["outputs"]
    assert j["outputs"][0]["shape"] == [4, 10], j["outputs"][0]["shape"]
    assert j["outputs"][0]["dtype"] == "float32"
    assert j["check"]["passed"] is True
    assert j["check"]["outputs"][0]["max_abs_error"] <= 1e-3
    assert isinstance(j["latency_ms"], (int, float)) and j["latency_ms"] > 0
    assert isinstance(j["placement"], dict)
    assert sum(j["placement"].values()) > 0, f"placement is empty: {j['placement']}"
    # Also a failing check must stay one JSON object on stdout.
    np = need("numpy")
    d = workdir("run_json")
    shutil.copy(os.path.join(data, "input_0.pb"), d)
    save_pb(os.path.join(d, "output_0.pb"), load_pb(os.path.join(data, "output_0.pb")) + np.float32(1), "output")
    rc, out, _ = tessera("run", path, "--inputs", d, "--check", d, "--json")
    expect(rc, 1, "run --json with a mismatch")
    j = parse_json(out, "run --json with a mismatch")
    assert j["check"]["passed"] is False


def case_run_generated():
    path, _ = model("mlp")
    rc, out1, _ = tessera("run", path, "--json")
    expect(rc, 0, "run with generated inputs")
    rc, out2, _ = tessera("run", path, "--json", "--threads", "1")
    expect(rc, 0, "run with generated inputs, 1 thread")
    v1 = parse_json(out1, "run --json")["outputs"][0]["values"]
    v2 = parse_json(out2, "run --json")["outputs"][0]["values"]
    assert len(v1) > 0
    for a, b in zip(v1, v2):
        assert abs(a - b) <= 1e-4 + 1e-3 * abs(b), f"generated inputs are not reproducible: {v1} vs {v2}"
    rc, out, _ = tessera("run", path, "--repeat", "3")
    expect(rc, 0, "run --repeat 3")
    assert "3 runs" in out


def case_run_save():
    np = need("numpy")
    path, data = model("mlp")
    d = workdir("run_save")
    rc, _, _ = tessera("run", path, "--inputs", data, "--save", os.path.join(d, "out"))
    expect(rc, 0, "run --save")
    got = load_pb(os.path.join(d, "out", "output_0.pb"))
    want = load_pb(os.path.join(data, "output_0.pb"))
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.allclose(got, want, rtol=1e-3, atol=1e-4), f"saved output differs: {np.abs(got - want).max()}"


def case_dynamic_dim():
    path, data = model("mlp_dynamic")
    rc, out, _ = tessera("run", path, "--dim", "batch=5", "--json")
    expect(rc, 0, "run --dim batch=5")
    assert parse_json(out, "run --json")["outputs"][0]["shape"] == [5, 10]
    rc, out, err = tessera("run", path, "--json")
    expect(rc, 0, "run with an unbound symbolic dim")
    assert parse_json(out, "run --json")["outputs"][0]["shape"] == [1, 10]
    assert "batch" in err, "no note on stderr about the symbolic dim"
    rc, _, _ = tessera("run", path, "--inputs", data, "--check", data)
    expect(rc, 0, "run the batch-3 test data")


def case_unsupported_op():
    onnx = need("onnx")
    from onnx import TensorProto, helper
    d = workdir("unsupported_op")
    nodes = [helper.make_node("FooBar", ["X"], ["Y"], name="foo_node_1"),
             helper.make_node("Bar", ["Y"], ["Z"], name="bar_node_2")]
    graph = helper.make_graph(nodes, "unsupported",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("Z", TensorProto.FLOAT, [2, 3])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = os.path.join(d, "unsupported.onnx")
    onnx.save(m, path)
    for cmd in ("run", "inspect"):
        rc, _, err = tessera(cmd, path)
        expect(rc, 2, f"{cmd} of a model with unsupported ops")
        expect_error_line(err, "foo_node_1", "bar_node_2")


def case_bad_dim():
    path, _ = model("mlp_dynamic")
    for spec in ("batch", "batch=", "=3", "batch=x", "batch=0", "batch=-2", "batch=3x"):
        rc, _, err = tessera("run", path, "--dim", spec)
        expect(rc, 2, f"--dim {spec}")
        expect_error_line(err, "--dim")


def case_bad_numbers():
    path, _ = model("mlp")
    for args in (("--threads", "0"), ("--threads", "two"), ("--rtol", "-1"), ("--atol", "abc"),
                 ("--repeat", "0")):
        rc, _, err = tessera("run", path, *args)
        expect(rc, 2, f"run {' '.join(args)}")
        expect_error_line(err, args[0])
    for args in (("--iters", "0"), ("--warmup", "-1")):
        rc, _, err = tessera("bench", path, *args)
        expect(rc, 2, f"bench {' '.join(args)}")
        expect_error_line(err, args[0])
    rc, _, err = tessera("run", path, "--device", "nosuchdevice:7")
    expect(rc, 2, "an unknown device")
    expect_error_line(err, "nosuchdevice")


def case_compile_needs_output():
    path, _ = model("mlp")
    rc, _, err = tessera("compile", path)
    expect(rc, 2, "compile without -o")
    expect_error_line(err, "-o")


def case_compile_and_run():
    path, data = model("mlp")
    d = workdir("compile_and_run")
    plan = os.path.join(d, "mlp.tplan")
    rc, out, _ = tessera("compile", path, "-o", plan)
    expect(rc, 0, "compile")
    assert plan in out, "compile does not say what it wrote"
    assert os.path.getsize(plan) > 4 * 784 * 256, "the plan is smaller than the weights"
    rc, out, _ = tessera("run", plan, "--inputs", data, "--check", data, "--json")
    expect(rc, 0, "run the plan")
    assert parse_json(out, "run --json")["check"]["passed"] is True
    rc, out, _ = tessera("inspect", plan, "--json")
    expect(rc, 0, "inspect the plan")
    parse_json(out, "inspect --json of a plan")


def case_bench_json():
    path, _ = model("mlp")
    rc, out, _ = tessera("bench", path, "--warmup", "1", "--iters", "5", "--threads", "1", "--json")
    expect(rc, 0, "bench --json")
    j = parse_json(out, "bench --json")
    lat = j["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"], lat
    assert len(j["latencies_ms"]) == 5
    assert j["batch"] == 4
    assert abs(j["throughput"]["samples_per_s"] - 4 * j["throughput"]["runs_per_s"]) < 1e-6 * j["throughput"][
        "samples_per_s"] + 1e-9
    assert j["compile_ms"] > 0
    assert j["peak_memory_bytes"] is not None, "no peak memory reported"
    rc, out, _ = tessera("bench", path, "--warmup", "0", "--iters", "2")
    expect(rc, 0, "bench")
    for word in ("p50", "p99", "runs/s", "samples/s", "peak memory"):
        assert word in out, f"bench output lacks {word!r}"


# ---- config: deployment configs (--config FILE) ----

def example_config(name):
    path = os.path.join(os.path.dirname(os.path.abspath(MODELS)), "examples", "configs", name)
    assert os.path.isfile(path), f"{path} is missing"
    return path


def case_config_run():
    path, data = model("mlp")
    for cfg in ("latency_cpu.toml", "throughput_cpu.toml"):
        rc, out, _ = tessera("run", path, "--config", example_config(cfg), "--inputs", data, "--check", data, "--json")
        expect(rc, 0, f"run --config {cfg}")
        j = parse_json(out, f"run --config {cfg} --json")
        assert j["check"]["passed"] is True
        assert sum(j["placement"].values()) > 0, f"placement is empty: {j['placement']}"
    rc, _, _ = tessera("run", path, "--config", example_config("latency_cpu.toml"))
    expect(rc, 0, "run --config latency_cpu.toml (human output)")
    rc, _, _ = tessera("bench", path, "--config", example_config("throughput_cpu.toml"), "--warmup", "0", "--iters", "2")
    expect(rc, 0, "bench --config throughput_cpu.toml")
    d = workdir("config_run")
    plan = os.path.join(d, "mlp.tplan")
    rc, _, _ = tessera("compile", path, "--config", example_config("latency_cpu.toml"), "-o", plan)
    expect(rc, 0, "compile --config latency_cpu.toml")
    rc, _, _ = tessera("run", plan, "--inputs", data, "--check", data)
    expect(rc, 0, "run the plan compiled with a config")


def case_config_bad():
    path, _ = model("mlp")
    d = workdir("config_bad")
    cases = [
        ("threads.toml", '[inference]\ndevices = ["cpu"]\nthreads = "two"\n', ":3:11: ",
         'inference.threads must be an integer >= 1, got "two"'),
        ("unknown.toml", "[inference]\n\nthread = 2\n", ":3:1: ", "unknown key 'inference.thread'"),
        ("syntax.toml", "[inference]\nthreads = \n", ":2:", "TOML syntax error"),
        ("role.toml", '[inference]\ndevices = ["GPU 0"]\n', ":2:12: ", "bad device role"),
        ("units.toml", '[inference.memory]\ncpu = "2 GiBs"\n', ":2:7: ", "bad byte size"),
    ]
    for name, text, loc, msg in cases:
        cfg = os.path.join(d, name)
        with open(cfg, "w") as f:
            f.write(text)
        for cmd in ("run", "inspect"):
            rc, _, err = tessera(cmd, path, "--config", cfg)
            expect(rc, 2, f"{cmd} --config {name}")
            expect_error_line(err, "--config", cfg + loc, msg)
    rc, _, err = tessera("run", path, "--config", os.path.join(d, "missing.toml"))
    expect(rc, 2, "run --config with a missing file")
    expect_error_line(err, "missing.toml")
    # A [training]-only file used for inference.
    cfg = os.path.join(d, "train_only.toml")
    with open(cfg, "w") as f:
        f.write("[training]\nlr = 0.1\n")
    rc, _, err = tessera("run", path, "--config", cfg)
    expect(rc, 2, "run --config with no [inference] table")
    expect_error_line(err, "no [inference] table")


def case_config_override():
    path, data = model("mlp")
    d = workdir("config_override")
    cfg = os.path.join(d, "nodev.toml")
    with open(cfg, "w") as f:
        f.write('[inference]\ndevices = ["nosuchdevice:7"]\n')
    rc, _, err = tessera("run", path, "--config", cfg)
    expect(rc, 2, "run with a config naming an unknown device")
    expect_error_line(err, "nosuchdevice")
    rc, _, _ = tessera("run", path, "--config", cfg, "--device", "cpu", "--inputs", data, "--check", data)
    expect(rc, 0, "--device after --config overrides the file")
    # The file's dim bindings size generated inputs; --dim overrides them.
    dyn, _ = model("mlp_dynamic")
    cfg = os.path.join(d, "dims.toml")
    with open(cfg, "w") as f:
        f.write("[inference.dims]\nbatch = 5\n")
    rc, out, _ = tessera("run", dyn, "--config", cfg, "--json")
    expect(rc, 0, "run --config with [inference.dims]")
    assert parse_json(out, "run --json")["outputs"][0]["shape"] == [5, 10]
    rc, out, _ = tessera("run", dyn, "--config", cfg, "--dim", "batch=6", "--json")
    expect(rc, 0, "run --config + --dim")
    assert parse_json(out, "run --json")["outputs"][0]["shape"] == [6, 10]
    # FILE#training selects the [training] table.
    cfg = os.path.join(d, "both.toml")
    with open(cfg, "w") as f:
        f.write('[inference]\ndevices = ["nosuchdevice:7"]\n[training]\ndevices = ["cpu"]\n')
    rc, _, _ = tessera("run", path, "--config", cfg + "#training", "--inputs", data, "--check", data)
    expect(rc, 0, "run --config FILE#training")
# ---- end config ----


def main():
    global CLI, MODELS, WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("case")
    a = ap.parse_args()
    CLI, MODELS, WORK = a.cli, a.models, a.work
    os.makedirs(WORK, exist_ok=True)
    fn = globals().get("case_" + a.case)
    if fn is None:
        print(f"unknown case {a.case}")
        return 1
    try:
        fn()
    except Skip as e:
        print(f"SKIP: {e}")
        return 77
    except AssertionError as e:
        print(f"FAIL: {e}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())

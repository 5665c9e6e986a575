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


# ---- train: `tessera train` (issue 9) ----

DIGITS_PATHS = ["/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"]


def train_model(name):
    path = os.path.join(MODELS, name, "model.onnx")
    if not os.path.isfile(path):
        raise Skip(f"{path} is missing (run: .venv/bin/python scripts/gen_train_refs.py --out models)")
    env = os.environ.get("TESSERA_DIGITS")
    paths = ([env] if env else []) + DIGITS_PATHS
    import glob
    paths += glob.glob(os.path.join(os.path.dirname(os.path.abspath(MODELS)), ".venv", "lib", "python3*",
                                    "site-packages", "sklearn", "datasets", "data", "digits.csv.gz"))
    if not any(os.path.isfile(p) for p in paths):
        raise Skip("the digits data set (digits.csv.gz) is missing: install python3-sklearn")
    return path


def digits_arrays():
    """(x f32 [1797, 64] = pixel / 16, y int64 [1797]) in file order, as runtime/datasets.h reads them."""
    np = need("numpy")
    import gzip
    env = os.environ.get("TESSERA_DIGITS")
    path = env if env and os.path.isfile(env) else DIGITS_PATHS[0]
    if not os.path.isfile(path):
        raise Skip(f"{path} is missing")
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.int64)
    # LoadDigits' split: the 5th, 10th, ... row of each class is "test"; returned as the 1442 train rows
    # then the 355 test rows.
    seen, test = np.zeros(10, dtype=np.int64), np.zeros(len(a), dtype=bool)
    for i, c in enumerate(a[:, 64]):
        test[i] = seen[c] % 5 == 4
        seen[c] += 1
    order = np.concatenate([np.flatnonzero(~test), np.flatnonzero(test)])
    a = a[order]
    return (a[:, :64].astype(np.float32) / np.float32(16)), a[:, 64]


def train_json(*args, what="train --json"):
    rc, out, err = tessera("train", *args, "--json")
    expect(rc, 0, what)
    assert err.strip() == "" or "error" not in err, f"{what}: unexpected stderr {err!r}"
    return parse_json(out, what)


def case_train_digits_mlp():
    path = train_model("train_mlp")
    cfg = example_config("train_mlp_digits.toml")
    # One thread: results do not depend on it, and a loaded CI machine runs it fastest.
    j = train_json(path, "--config", cfg, "--data", "digits", "--threads", "1", what="train MLP 20 epochs")
    # The done-when line: 20 epochs reach >= 95% test accuracy.
    assert j["epochs"] == 20 and j["steps_per_epoch"] == 1442 // j["batch_size"], j
    assert j["steps"] == 20 * j["steps_per_epoch"] == j["steps_run"], f"steps {j['steps']}"
    assert j["test_rows"] == 355 and j["train_rows"] == 1442
    assert j["test_accuracy"] is not None and j["test_accuracy"] >= 0.95, f"test accuracy {j['test_accuracy']}"
    assert j["train_accuracy"] >= j["test_accuracy"] - 0.05, j["train_accuracy"]
    assert len(j["history"]) == 20
    first, last = j["history"][0]["loss"], j["history"][-1]["loss"]
    assert last < first * 0.6, f"the epoch loss did not fall: {first} -> {last}"
    assert j["optimizer"] == "sgd" and abs(j["lr"] - 0.05) < 1e-12, (j["optimizer"], j["lr"])
    t = j["step_ms"]
    assert 0 < t["min"] <= t["median"] <= t["p90"] <= t["max"], t
    assert j["samples_per_s"] > 0 and j["checkpoint"] is None and j["export"] is None
    # Human output: one line per epoch with loss, accuracies and samples/s.
    rc, out, _ = tessera("train", path, "--config", cfg, "--epochs", "2", "--eval-every-epoch", "--threads", "1")
    expect(rc, 0, "train (human output)")
    for needle in ("epoch 1/2", "epoch 2/2", "loss", "train acc", "test acc", "samples/s", "dropped"):
        assert needle in out, f"train output lacks {needle!r}"
    assert out.count("test acc") >= 3, "--eval-every-epoch should report test accuracy after each epoch"
    rc, out, _ = tessera("train", path, "--config", cfg, "--epochs", "1", "--quiet", "--threads", "1")
    expect(rc, 0, "train --quiet")
    assert "epoch 1/" not in out and "final loss" in out, out


def case_train_digits_cnn():
    """The CNN (Conv-BatchNorm-ReLU-MaxPool x2, Gemm) reaches >= 95% test accuracy in 20 epochs (PyTorch: 95.3%)."""
    path = train_model("train_cnn")
    j = train_json(path, "--config", example_config("train_cnn_digits.toml"), "--threads", "1",
                   what="train CNN 20 epochs")
    assert j["epochs"] == 20 and j["optimizer"] == "adamw", j
    assert j["test_accuracy"] is not None and j["test_accuracy"] >= 0.95, f"test accuracy {j['test_accuracy']}"


def case_train_bf16():
    """--precision bf16 trains with bf16 compute and f32 master weights: the MLP (whose Gemm bias is a trained
    parameter, kept in f32 by the precision pass) and the CNN both learn."""
    for name, cfg in (("train_mlp", "train_mlp_digits.toml"), ("train_cnn", "train_cnn_digits.toml")):
        path = train_model(name)
        j = train_json(path, "--config", example_config(cfg), "--precision", "bf16", "--epochs", "3", "--threads", "1",
                       what=f"train {name} bf16")
        first, last = j["history"][0]["loss"], j["history"][-1]["loss"]
        assert last < first * 0.7, f"{name} bf16: the epoch loss did not fall: {first} -> {last}"
        assert j["test_accuracy"] >= 0.85, f"{name} bf16: test accuracy {j['test_accuracy']}"


def case_train_torch_curve():
    """`tessera train --no-shuffle` follows PyTorch's first 44 losses (one epoch in file order) within 1e-4
    relative, for the MLP (SGD with momentum) and the CNN (AdamW, BatchNorm in training mode)."""
    d = workdir("train_torch_curve")
    for name in ("train_mlp", "train_cnn"):
        path = train_model(name)
        ref_path = os.path.join(MODELS, name, "torch_ref.json")
        if not os.path.isfile(ref_path):
            raise Skip(f"{ref_path} is missing")
        with open(ref_path) as f:
            ref = json.load(f)
        o = ref["optimizer"]
        lines = [f'optimizer = "{o["kind"]}"', f'lr = {ref["lr"]}', f'batch_size = {ref["batch_size"]}', "threads = 1"]
        if o["kind"] == "sgd":
            lines.append(f'momentum = {o["momentum"]}')
        else:
            lines += [f'beta1 = {o["beta1"]}', f'beta2 = {o["beta2"]}', f'epsilon = {o["epsilon"]}',
                      f'weight_decay = {o["weight_decay"]}']
        cfg = os.path.join(d, name + ".toml")
        with open(cfg, "w") as f:
            f.write("[training]\n" + "\n".join(lines) + "\n")
        csv_path = os.path.join(d, name + ".csv")
        spe = 1442 // ref["batch_size"]
        rc, _, _ = tessera("train", path, "--config", cfg, "--no-shuffle", "--steps", spe, "--csv", csv_path,
                           "--quiet")
        expect(rc, 0, f"{name}: train --no-shuffle")
        with open(csv_path) as f:
            losses = [float(l.split(",")[2]) for l in f.read().splitlines()[1:]]
        assert len(losses) == spe
        for k, (a, b) in enumerate(zip(losses, ref["losses"])):
            assert abs(a - b) <= 1e-4 * abs(b), f"{name} step {k}: loss {a} vs PyTorch {b}"


def case_train_csv():
    path = train_model("train_mlp")
    d = workdir("train_csv")
    csv_path = os.path.join(d, "loss.csv")
    j = train_json(path, "--config", example_config("train_mlp_digits.toml"), "--epochs", "2", "--lr", "0.02",
                   "--batch-size", "32", "--threads", "1", "--csv", csv_path, what="train --csv")
    with open(csv_path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "step,epoch,loss,lr", lines[0]
    rows = [l.split(",") for l in lines[1:]]
    spe = 1442 // 32
    assert len(rows) == 2 * spe, f"{len(rows)} CSV rows, expected {2 * spe}"
    for k, r in enumerate(rows):
        assert len(r) == 4, r
        assert int(r[0]) == k + 1, f"row {k}: step {r[0]}"
        assert int(r[1]) == 1 + k // spe, f"row {k}: epoch {r[1]}"
        assert abs(float(r[3]) - 0.02) < 1e-9, f"row {k}: lr {r[3]} (--lr 0.02 must override the config)"
        loss = float(r[2])
        assert loss == loss and 0 <= loss < 10, f"row {k}: loss {r[2]}"
    assert abs(float(rows[-1][2]) - j["final_loss"]) <= 1e-7 * abs(j["final_loss"]), (rows[-1], j["final_loss"])
    assert j["csv"] == csv_path
    rc, _, err = tessera("train", path, "--csv", os.path.join(d, "no", "such", "dir", "x.csv"))
    expect(rc, 2, "--csv into a missing folder")
    expect_error_line(err, "--csv")


def _resume_pair(path, cfg, d, extra, tag):
    ck = os.path.join(d, tag + "_{step}.safetensors")
    extra = ["--batch-size", "32", "--threads", "1", *extra]
    a = train_json(path, "--config", cfg, "--steps", "60", "--checkpoint", ck, "--checkpoint-every", "50", *extra,
                   what=f"{tag}: uninterrupted 60 steps")
    ck50, ck60 = ck.replace("{step}", "50"), ck.replace("{step}", "60")
    assert os.path.isfile(ck50) and os.path.isfile(ck60), "checkpoints at step 50 and at the end are missing"
    assert a["checkpoint"] == ck60 and a["steps"] == 60, (a["checkpoint"], a["steps"])
    b = train_json(path, "--config", cfg, "--steps", "60", "--resume", ck50, *extra, what=f"{tag}: resume at 50")
    assert b["resumed_from"] == 50 and b["steps"] == 60 and b["steps_run"] == 10, b
    # Step 50 is inside epoch 2 (44 steps per epoch): the resumed run must feed the same shuffled batches.
    assert b["final_loss"] == a["final_loss"], f"{tag}: resumed final loss {b['final_loss']!r} != {a['final_loss']!r}"
    assert b["test_accuracy"] == a["test_accuracy"], (b["test_accuracy"], a["test_accuracy"])


def case_train_checkpoint_resume():
    path = train_model("train_mlp")
    d = workdir("train_checkpoint_resume")
    cfg = example_config("train_mlp_digits.toml")
    _resume_pair(path, cfg, d, [], "sgd")
    _resume_pair(path, cfg, d, ["--optimizer", "adamw", "--lr", "0.001"], "adamw")
    rc, _, err = tessera("train", path, "--config", cfg, "--batch-size", "32", "--optimizer", "adamw", "--resume",
                         os.path.join(d, "sgd_50.safetensors"))
    expect(rc, 2, "--resume an SGD checkpoint with AdamW")
    expect_error_line(err, "sgd_50.safetensors", "optimizer")
    # Resumed at the end: nothing runs, the accuracy is still reported.
    j = train_json(path, "--config", cfg, "--batch-size", "32", "--threads", "1", "--steps", "60", "--resume",
                   os.path.join(d, "sgd_60.safetensors"), what="resume at the last step")
    assert j["steps_run"] == 0 and j["steps"] == 60 and j["final_loss"] is None and j["test_accuracy"] is not None, j
    rc, _, err = tessera("train", path, "--config", cfg, "--resume", os.path.join(d, "missing.safetensors"))
    expect(rc, 2, "--resume with a missing file")
    expect_error_line(err, "missing.safetensors")
    bad = os.path.join(d, "bad.safetensors")
    with open(bad, "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    rc, _, err = tessera("train", path, "--config", cfg, "--resume", bad)
    assert rc in (1, 2), f"--resume with a corrupt file: exit {rc}"
    expect_error_line(err, "bad.safetensors")


def case_train_export_run():
    np = need("numpy")
    path = train_model("train_mlp")
    d = workdir("train_export_run")
    out_model = os.path.join(d, "trained.onnx")
    j = train_json(path, "--config", example_config("train_mlp_digits.toml"), "--epochs", "3", "--threads", "1",
                   "--export", out_model, what="train --export")
    assert j["export"] == out_model and os.path.isfile(out_model)
    # `tessera run` on the exported model, fed the 355 test rows, agrees with train's test accuracy.
    x, y = digits_arrays()
    inputs = os.path.join(d, "inputs")
    os.makedirs(inputs)
    save_pb(os.path.join(inputs, "input_0.pb"), x[1442:], "x")
    saved = os.path.join(d, "outputs")
    rc, _, _ = tessera("run", out_model, "--inputs", inputs, "--save", saved)
    expect(rc, 0, "tessera run on the exported model")
    logits = load_pb(os.path.join(saved, "output_0.pb"))
    assert logits.shape == (355, 10), logits.shape
    acc = float(np.mean(np.argmax(logits, axis=1) == y[1442:]))
    # Batching (355 rows at once vs. batches of 32) may flip at most a near-tie.
    assert abs(acc - j["test_accuracy"]) <= 1 / 355 + 1e-9, f"run accuracy {acc} != train's {j['test_accuracy']}"
    rc, _, err = tessera("train", path, "--epochs", "1", "--export", os.path.join(d, "no", "dir", "m.onnx"))
    assert rc in (1, 2), f"--export into a missing folder: exit {rc}"
    expect_error_line(err, "--export")


def case_train_bad_config():
    path = train_model("train_mlp")
    d = workdir("train_bad_config")
    rc, out, _ = tessera("train", "--help")
    expect(rc, 0, "train --help")
    for needle in ("--config", "--data", "--bench-steps", "dropped"):
        assert needle in out, f"train --help lacks {needle!r}"
    cases = [
        ("typo.toml", "[training]\noptimiser = \"sgd\"\n", ":2:1: ", "unknown key 'training.optimiser'"),
        ("lr.toml", "[training]\nlr = -1.0\n", ":2:6: ", "training.lr"),
        ("batch.toml", "[training]\nbatch_size = 0\n", ":2:", "training.batch_size"),
        ("opt.toml", "[training]\noptimizer = \"rmsprop\"\n", ":2:", "optimizer"),
    ]
    for name, text, loc, msg in cases:
        cfg = os.path.join(d, name)
        with open(cfg, "w") as f:
            f.write(text)
        rc, out, err = tessera("train", path, "--config", cfg)
        expect(rc, 2, f"train --config {name}")
        expect_error_line(err, "--config", cfg + loc, msg)
        assert out == "", "errors must not print on stdout"
    cfg = os.path.join(d, "inference_only.toml")
    with open(cfg, "w") as f:
        f.write('[inference]\ndevices = ["cpu"]\n')
    rc, _, err = tessera("train", path, "--config", cfg)
    expect(rc, 2, "train --config with no [training] table")
    expect_error_line(err, "no [training] table")
    bad_flags = [
        (["--optimizer", "rmsprop"], "--optimizer"),
        (["--batch-size", "0"], "--batch-size"),
        (["--epochs", "two"], "--epochs"),
        (["--lr", "-0.1"], "--lr"),
        (["--threads", "0"], "--threads"),
        (["--bench-steps", "0"], "--bench-steps"),
        (["--bench-steps", "3", "--export", os.path.join(d, "x.onnx")], "--export"),
        (["--checkpoint-every", "5"], "--checkpoint"),
        (["--batch-size", "5000"], "larger than the training set"),
        (["--loss-output", "nosuch"], "nosuch"),
        (["--no-such-flag"], "--no-such-flag"),
    ]
    for extra, needle in bad_flags:
        rc, _, err = tessera("train", path, *extra)
        expect(rc, 2, "train " + " ".join(extra))
        expect_error_line(err, needle)
    rc, _, err = tessera("train")
    expect(rc, 2, "train without a model")
    rc, _, err = tessera("train", os.path.join(d, "missing.onnx"))
    expect(rc, 2, "train a missing model")
    expect_error_line(err, "missing.onnx")
    # A model whose output is not logits [batch, classes] (the transformer block: [2, 8, 32]).
    block = os.path.join(MODELS, "train_block", "model.onnx")
    if os.path.isfile(block):
        rc, _, err = tessera("train", block, "--epochs", "1")
        expect(rc, 2, "train a model without a logits output")
        expect_error_line(err, "logits")


def _write_npy_dir(d, x, y, test=True):
    np = need("numpy")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "x_train.npy"), x[:1442])
    np.save(os.path.join(d, "y_train.npy"), y[:1442])
    if test:
        np.save(os.path.join(d, "x_test.npy"), x[1442:])
        np.save(os.path.join(d, "y_test.npy"), y[1442:])


def case_train_missing_data():
    np = need("numpy")
    path = train_model("train_mlp")
    d = workdir("train_missing_data")
    x, y = digits_arrays()
    rc, _, err = tessera("train", path, "--data", os.path.join(d, "nosuchdir"))
    expect(rc, 2, "--data with a missing folder")
    expect_error_line(err, "nosuchdir")
    only_x = os.path.join(d, "only_x")
    os.makedirs(only_x)
    np.save(os.path.join(only_x, "x_train.npy"), x[:100])
    rc, _, err = tessera("train", path, "--data", only_x)
    expect(rc, 2, "--data without y_train.npy")
    expect_error_line(err, "y_train.npy")
    float_labels = os.path.join(d, "float_labels")
    _write_npy_dir(float_labels, x, y.astype(np.float32), test=False)
    rc, _, err = tessera("train", path, "--data", float_labels)
    expect(rc, 2, "--data with float labels")
    expect_error_line(err, "y_train.npy", "f32", "labels")
    rows = os.path.join(d, "rows")
    _write_npy_dir(rows, x, y, test=False)
    np.save(os.path.join(rows, "y_train.npy"), y[:1000])
    rc, _, err = tessera("train", path, "--data", rows)
    expect(rc, 2, "--data with fewer labels than rows")
    expect_error_line(err, "y_train", "1442")
    half = os.path.join(d, "half_test")
    _write_npy_dir(half, x, y, test=False)
    np.save(os.path.join(half, "x_test.npy"), x[1442:])
    rc, _, err = tessera("train", path, "--data", half)
    expect(rc, 2, "--data with x_test.npy but no y_test.npy")
    expect_error_line(err, "y_test.npy")
    wrong = os.path.join(d, "wrong_width")
    _write_npy_dir(wrong, x[:, :60].copy(), y, test=False)
    rc, _, err = tessera("train", path, "--data", wrong)
    expect(rc, 2, "--data with 60 features for a 64-input model")
    expect_error_line(err, "x_train", "[1442, 60]")
    corrupt = os.path.join(d, "corrupt")
    _write_npy_dir(corrupt, x, y, test=False)
    with open(os.path.join(corrupt, "x_train.npy"), "wb") as f:
        f.write(b"\x93NUMPY garbage")
    rc, _, err = tessera("train", path, "--data", corrupt)
    expect(rc, 2, "--data with a corrupt x_train.npy")
    expect_error_line(err, "x_train.npy")


def case_train_npy_dir():
    np = need("numpy")
    path = train_model("train_mlp")
    d = workdir("train_npy_dir")
    x, y = digits_arrays()
    # float64 features and int32 labels are converted; the result equals --data digits.
    npy = os.path.join(d, "digits_npy")
    _write_npy_dir(npy, x.astype(np.float64), y.astype(np.int32))
    cfg = example_config("train_mlp_digits.toml")
    a = train_json(path, "--config", cfg, "--epochs", "2", "--threads", "1", "--data", npy, what="train --data DIR")
    b = train_json(path, "--config", cfg, "--epochs", "2", "--threads", "1", "--data", "digits", what="train --data digits")
    assert a["final_loss"] == b["final_loss"], (a["final_loss"], b["final_loss"])
    assert a["test_accuracy"] == b["test_accuracy"] and a["test_rows"] == 355
    no_test = os.path.join(d, "no_test")
    _write_npy_dir(no_test, x, y, test=False)
    c = train_json(path, "--config", cfg, "--epochs", "1", "--threads", "1", "--data", no_test, what="train without test files")
    assert c["test_accuracy"] is None and c["train_accuracy"] is not None and c["test_rows"] is None
    # The CNN takes [N, 1, 8, 8]: [N, 64] rows are reshaped to the model input.
    cnn = os.path.join(MODELS, "train_cnn", "model.onnx")
    if os.path.isfile(cnn):
        e = train_json(cnn, "--config", example_config("train_cnn_digits.toml"), "--steps", "20", "--threads", "1", "--data", no_test,
                       what="train the CNN from [N, 64] rows")
        assert e["steps"] == 20 and e["final_loss"] is not None


def case_train_bench_json():
    path = train_model("train_mlp")
    cfg = example_config("train_mlp_digits.toml")
    j = train_json(path, "--config", cfg, "--data", "digits", "--batch-size", "256", "--threads", "2",
                   "--bench-steps", "10", what="train --bench-steps --json")
    t = j["step_ms"]
    assert 0 < t["min"] <= t["median"] <= t["p90"] <= t["max"] and t["min"] <= t["mean"] <= t["max"], t
    assert len(j["steps_ms"]) == 10 and j["bench_steps"] == 10 and j["warmup_steps"] == 5
    assert j["batch_size"] == 256 and j["threads"] == 2
    assert abs(j["samples_per_s"] - 256 * 1000.0 / t["mean"]) <= 1e-6 * j["samples_per_s"], j["samples_per_s"]
    assert j["final_loss"] is not None
    rc, out, _ = tessera("train", path, "--config", cfg, "--bench-steps", "3")
    expect(rc, 0, "train --bench-steps (human output)")
    for needle in ("median", "p90", "samples/s"):
        assert needle in out, f"bench output lacks {needle!r}"
# ---- end train ----


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

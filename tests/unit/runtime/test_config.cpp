// Deployment configs (runtime/config.h): every key, every error with its
// FILE:LINE:COL, overrides order, the example configs, the C API.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "runtime/config.h"
#include "runtime/options.h"
#include "tessera/tessera.h"
#include "tessera/tessera.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;

DeploymentConfig MustLoad(const std::string& text) {
  auto r = LoadConfigString(text, "t.toml");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : DeploymentConfig{};
}

// Expects `text` to fail with an InvalidArgument message that starts with
// `prefix` ("t.toml:LINE:COL: ") and contains every needle.
void ExpectError(const std::string& text, const std::string& prefix, const std::vector<std::string>& needles) {
  auto r = LoadConfigString(text, "t.toml");
  ASSERT_FALSE(r.ok()) << "expected an error for:\n" << text;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = r.status().message();
  EXPECT_EQ(m.rfind(prefix, 0), 0u) << "message '" << m << "' does not start with '" << prefix << "'";
  for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "message '" << m << "' lacks '" << n << "'";
}

fs::path SourceDir() { return fs::path(TESSERA_MODELS_DIR).parent_path(); }

std::string WriteTemp(const std::string& name, const std::string& text) {
  fs::path p = fs::temp_directory_path() / ("tessera_test_config_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p.string();
}

const char kFull[] = R"(# every key
[inference]
devices = ["opencl:0", "cpu"]
precision = "bf16"
policy = "throughput"
strict = true
threads = 3
opt_level = 1
trace = "out/trace.json"

[inference.memory]
max_alloc_bytes = "1.5GiB"
"cpu" = "2GiB"
"opencl:0" = 1048576

[inference.dims]
batch = 8
seq = 0

[inference.placement]
"MatMul" = "opencl:0"
"output_proj" = "cpu"

[inference.backend.cpu]
threads = 2
fast = true
ratio = 0.5
name = "x"

[training]
devices = "auto"
optimizer = "adamw"
lr = 1e-3
epochs = 3
steps = 100
batch_size = 32
loss = "cross_entropy"
momentum = 0.9
nesterov = true
weight_decay = 0
beta1 = 0.9
beta2 = 0.999
epsilon = 1e-8
grad_clip = 1.0
label_smoothing = 0.1
ignore_index = -100
seed = 7
warmup_steps = 10
checkpoint = "ckpt/"
checkpoint_every = 50
)";

TEST(Config, ParsesEveryKey) {
  DeploymentConfig c = MustLoad(kFull);
  EXPECT_EQ(c.source, "t.toml");
  const WorkloadConfig& i = c.inference;
  EXPECT_TRUE(i.present);
  ASSERT_TRUE(i.devices.has_value());
  EXPECT_EQ(*i.devices, (std::vector<std::string>{"opencl:0", "cpu"}));
  EXPECT_EQ(i.precision.value_or(""), "bf16");
  EXPECT_EQ(i.policy.value_or(""), "throughput");
  EXPECT_EQ(i.strict.value_or(false), true);
  EXPECT_EQ(i.threads.value_or(0), 3);
  EXPECT_EQ(i.opt_level.value_or(-1), 1);
  EXPECT_EQ(i.trace.value_or(""), "out/trace.json");
  EXPECT_EQ(i.max_alloc_bytes.value_or(0), int64_t{3} << 29);  // 1.5 GiB
  EXPECT_EQ(i.memory_caps, (std::map<std::string, int64_t>{{"cpu", int64_t{2} << 30}, {"opencl:0", 1048576}}));
  EXPECT_EQ(i.dims, (std::map<std::string, int64_t>{{"batch", 8}, {"seq", 0}}));
  EXPECT_EQ(i.placement, (std::map<std::string, std::string>{{"MatMul", "opencl:0"}, {"output_proj", "cpu"}}));
  ASSERT_EQ(i.backend_options.count("cpu"), 1u);
  EXPECT_EQ(i.backend_options.at("cpu"),
            (std::map<std::string, std::string>{{"threads", "2"}, {"fast", "1"}, {"ratio", "0.5"}, {"name", "x"}}));
  EXPECT_TRUE(i.training.empty());
  EXPECT_EQ(i.locations.at("threads"), "t.toml:7:11");
  EXPECT_EQ(i.locations.at("dim.batch"), "t.toml:17:9");

  const WorkloadConfig& t = c.training;
  EXPECT_TRUE(t.present);
  EXPECT_EQ(*t.devices, (std::vector<std::string>{"auto"}));
  EXPECT_EQ(t.training.at("optimizer"), "adamw");
  EXPECT_EQ(t.training.at("lr"), "0.001");
  EXPECT_EQ(t.training.at("epochs"), "3");
  EXPECT_EQ(t.training.at("batch_size"), "32");
  EXPECT_EQ(t.training.at("loss"), "cross_entropy");
  EXPECT_EQ(t.training.at("nesterov"), "1");
  EXPECT_EQ(t.training.at("weight_decay"), "0");
  EXPECT_EQ(t.training.at("ignore_index"), "-100");
  EXPECT_EQ(t.training.at("epsilon"), "1e-08");
  EXPECT_EQ(t.training.size(), 19u);
}

TEST(Config, EmptyAndPartialTables) {
  DeploymentConfig c = MustLoad("# nothing\n");
  EXPECT_FALSE(c.inference.present);
  EXPECT_FALSE(c.training.present);
  c = MustLoad("[inference]\nthreads = 2\n");
  EXPECT_TRUE(c.inference.present);
  EXPECT_FALSE(c.inference.devices.has_value());
  EXPECT_FALSE(c.inference.precision.has_value());
  EXPECT_FALSE(c.training.present);
  // Dotted keys are the same as tables.
  c = MustLoad("inference.dims.batch = 4\ninference.backend.cpu.x = 1\n");
  EXPECT_EQ(c.inference.dims.at("batch"), 4);
  EXPECT_EQ(c.inference.backend_options.at("cpu").at("x"), "1");
}

TEST(Config, AppliesToSessionOptions) {
  DeploymentConfig c = MustLoad(kFull);
  SessionOptions o;
  ASSERT_TRUE(o.ApplyConfig(c, Workload::kInference).ok());
  EXPECT_EQ(o.devices, (std::vector<std::string>{"opencl:0", "cpu"}));
  EXPECT_EQ(o.precision, "bf16");
  EXPECT_EQ(o.policy, "throughput");
  EXPECT_TRUE(o.strict);
  EXPECT_EQ(o.threads, 3);  // set in the file: throughput does not override it
  EXPECT_FALSE(o.threads_set_by_policy);
  EXPECT_EQ(o.opt_level, 1);
  EXPECT_EQ(o.trace, "out/trace.json");
  EXPECT_EQ(o.max_alloc_bytes, int64_t{3} << 29);
  EXPECT_EQ(o.memory_caps.at("cpu"), int64_t{2} << 30);
  EXPECT_EQ(o.dims.at("batch"), 8);
  EXPECT_EQ(o.placement.at("MatMul"), "opencl:0");
  EXPECT_EQ(o.backend_options.at("cpu").at("fast"), "1");
  auto m = o.ToMap();
  EXPECT_EQ(m.at("policy"), "throughput");
  EXPECT_EQ(m.at("memory.cpu"), std::to_string(int64_t{2} << 30));
  EXPECT_EQ(m.at("backend.cpu.ratio"), "0.5");

  SessionOptions t;
  ASSERT_TRUE(t.ApplyConfig(c, Workload::kTraining).ok());
  EXPECT_EQ(t.devices, (std::vector<std::string>{"auto"}));
  EXPECT_EQ(t.training.at("optimizer"), "adamw");
  EXPECT_EQ(t.ToMap().at("training.lr"), "0.001");
  EXPECT_EQ(t.threads, 0);  // untouched
}

TEST(Config, MissingWorkloadTableIsAnError) {
  DeploymentConfig c = MustLoad("[inference]\nthreads = 2\n");
  SessionOptions o;
  Status st = o.ApplyConfig(c, Workload::kTraining);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("t.toml: no [training] table (it has [inference])"), std::string::npos)
      << st.message();
  c = MustLoad("");
  st = o.ApplyConfig(c, Workload::kInference);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no [inference] table (it is empty)"), std::string::npos) << st.message();
}

TEST(Config, ApplyIsAtomicAndNamesTheLocation) {
  // A value the parser would reject, built by hand: Set() rejects it while
  // applying, the error carries the recorded location, nothing changes.
  DeploymentConfig c;
  c.source = "x.toml";
  c.inference.present = true;
  c.inference.devices = std::vector<std::string>{"cpu"};
  c.inference.threads = 99999;
  c.inference.locations["threads"] = "x.toml:4:11";
  SessionOptions o;
  o.devices = {"opencl:0"};
  Status st = o.ApplyConfig(c, Workload::kInference);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("x.toml:4:11: ", 0), 0u) << st.message();
  EXPECT_NE(st.message().find("threads"), std::string::npos);
  EXPECT_EQ(o.devices, (std::vector<std::string>{"opencl:0"}));  // unchanged
  EXPECT_EQ(o.threads, 0);
}

TEST(Config, OverrideOrderLaterWins) {
  std::string path = WriteTemp("order.toml", "[inference]\nthreads = 3\ndevices = [\"cpu\"]\nopt_level = 1\n"
                                             "[training]\nthreads = 5\n");
  SessionOptions o;
  ASSERT_TRUE(o.Set("threads", "7").ok());
  ASSERT_TRUE(o.Set("config", path).ok());
  EXPECT_EQ(o.threads, 3) << "the config overrides options set before it";
  EXPECT_EQ(o.opt_level, 1);
  ASSERT_TRUE(o.Set("threads", "2").ok());
  EXPECT_EQ(o.threads, 2) << "options set after the config override it";
  EXPECT_EQ(o.opt_level, 1) << "settings the later option does not touch stay";
  ASSERT_TRUE(o.Set("config", path + "#training").ok());
  EXPECT_EQ(o.threads, 5);
  ASSERT_TRUE(o.Set("config", path + "#inference").ok());
  EXPECT_EQ(o.threads, 3);
  fs::remove(path);
}

TEST(Config, PolicyThroughputPinsThreadsOnlyWhenUnset) {
  SessionOptions o;
  ASSERT_TRUE(o.Set("policy", "throughput").ok());
  EXPECT_EQ(o.threads, PhysicalCoreCount());
  EXPECT_GE(o.threads, 1);
  EXPECT_TRUE(o.threads_set_by_policy);
  ASSERT_TRUE(o.Set("policy", "latency").ok());
  EXPECT_EQ(o.threads, 0) << "latency undoes the threads throughput chose";
  ASSERT_TRUE(o.Set("threads", "2").ok());
  ASSERT_TRUE(o.Set("policy", "throughput").ok());
  EXPECT_EQ(o.threads, 2) << "a user's thread count wins";
  ASSERT_TRUE(o.Set("policy", "latency").ok());
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.ToMap().at("policy"), "latency");
  Status st = o.Set("policy", "fast");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'fast'"), std::string::npos);

  // In a config, threads given in the same table win over the policy.
  SessionOptions p;
  ASSERT_TRUE(p.ApplyConfig(MustLoad("[inference]\npolicy = \"throughput\"\nthreads = 1\n"), Workload::kInference).ok());
  EXPECT_EQ(p.threads, 1);
}

TEST(Config, NewOptionKeys) {
  SessionOptions o;
  ASSERT_TRUE(o.Set("memory.cpu", "512MiB").ok());
  EXPECT_EQ(o.memory_caps.at("cpu"), int64_t{512} << 20);
  ASSERT_TRUE(o.Set("memory.opencl:1", "1000").ok());
  EXPECT_EQ(o.memory_caps.at("opencl:1"), 1000);
  EXPECT_FALSE(o.Set("memory.gpu", "1GiB").ok());
  EXPECT_FALSE(o.Set("memory.cpu", "lots").ok());
  ASSERT_TRUE(o.Set("backend.cpu.some_flag", "on").ok());
  EXPECT_EQ(o.backend_options.at("cpu").at("some_flag"), "on");
  EXPECT_FALSE(o.Set("backend.cpux.a", "1").ok());
  EXPECT_FALSE(o.Set("backend.cpu", "1").ok());
  EXPECT_FALSE(o.Set("backend.cpu.", "1").ok());
  ASSERT_TRUE(o.Set("training.lr", "0.01").ok());
  EXPECT_EQ(o.training.at("lr"), "0.01");
  ASSERT_TRUE(o.Set("training.nesterov", "true").ok());
  EXPECT_EQ(o.training.at("nesterov"), "1");
  Status st = o.Set("training.lr", "-1");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("training.lr must be a number in (0"), std::string::npos) << st.message();
  st = o.Set("training.optimizer", "rmsprop");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("sgd,adam,adamw"), std::string::npos) << st.message();
  st = o.Set("training.lrr", "1");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("did you mean 'lr'"), std::string::npos) << st.message();
  EXPECT_FALSE(o.Set("training.epochs", "1.5").ok());
  EXPECT_FALSE(o.Set("training.epochs", "x = 1").ok());
  ASSERT_TRUE(o.Set("training.checkpoint", "ckpt/été \"1\"").ok());
  EXPECT_EQ(o.training.at("checkpoint"), "ckpt/été \"1\"");
  EXPECT_FALSE(o.Set("training.checkpoint", "bad\xff").ok());
  EXPECT_FALSE(o.Set("training.loss", "a\nb").ok());
  ASSERT_TRUE(o.Set("max_alloc_bytes", "2GiB").ok());
  EXPECT_EQ(o.max_alloc_bytes, int64_t{2} << 30);
  ASSERT_TRUE(o.Set("max_alloc_bytes", "64").ok());
  EXPECT_EQ(o.max_alloc_bytes, 64);
  EXPECT_FALSE(o.Set("max_alloc_bytes", "0").ok());
  EXPECT_FALSE(o.Set("config", "").ok());
  st = o.Set("config", "/nonexistent/deploy.toml");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("/nonexistent/deploy.toml"), std::string::npos);
}

TEST(Config, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("100"), 100);
  EXPECT_EQ(*ParseByteSize("1B"), 1);
  EXPECT_EQ(*ParseByteSize("2KB"), 2000);
  EXPECT_EQ(*ParseByteSize("2kib"), 2048);
  EXPECT_EQ(*ParseByteSize("3 MiB"), 3 << 20);
  EXPECT_EQ(*ParseByteSize("1.5GB"), 1500000000);
  EXPECT_EQ(*ParseByteSize("1TiB"), int64_t{1} << 40);
  for (const char* bad : {"", "GiB", "-1", "0", "1.2.3GiB", "2 GiBs", "1e3", "0.1B", "99999999999999999999",
                          "9000000TiB", " 1"})
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
}

TEST(Config, DeviceRoles) {
  for (const char* ok : {"cpu", "opencl:0", "cuda:12", "my_dev2", "auto"}) EXPECT_TRUE(IsValidDeviceRole(ok)) << ok;
  for (const char* bad : {"", "CPU", "cuda:", ":0", "cuda:x", "2cpu", "gpu 0", "cuda:0:1", "cuda:-1"})
    EXPECT_FALSE(IsValidDeviceRole(bad)) << bad;
}

// ---- every error, with its line and column ----

TEST(ConfigErrors, WrongTypesAndRanges) {
  ExpectError("[inference]\nthreads = \"two\"\n", "t.toml:2:11: ",
              {"inference.threads must be an integer >= 1, got \"two\""});
  ExpectError("[inference]\nthreads = 0\n", "t.toml:2:11: ", {"inference.threads must be an integer >= 1, got 0"});
  ExpectError("[inference]\nthreads = 1.5\n", "t.toml:2:11: ", {"got 1.5"});
  ExpectError("[inference]\nthreads = 5000\n", "t.toml:2:11: ", {"inference.threads must be at most 4096"});
  ExpectError("[inference]\n\n  opt_level = 3\n", "t.toml:3:15: ", {"inference.opt_level must be at most 2, got 3"});
  ExpectError("[inference]\nopt_level = -1\n", "t.toml:2:13: ", {"inference.opt_level must be an integer >= 0"});
  ExpectError("[inference]\nstrict = \"yes\"\n", "t.toml:2:10: ", {"inference.strict must be true or false, got \"yes\""});
  ExpectError("[inference]\ntrace = 3\n", "t.toml:2:9: ", {"inference.trace must be a non-empty string", "got 3"});
  ExpectError("[inference]\ntrace = \"\"\n", "t.toml:2:9: ", {"inference.trace"});
  ExpectError("inference = 3\n", "t.toml:1:13: ", {"inference must be a table"});
  ExpectError("[inference]\nmemory = 5\n", "t.toml:2:10: ", {"inference.memory must be a table", "got 5"});
  ExpectError("[inference]\ndims = [1]\n", "t.toml:2:8: ", {"inference.dims must be a table", "got an array"});
}

TEST(ConfigErrors, BadEnumValues) {
  ExpectError("[inference]\nprecision = \"fp64\"\n", "t.toml:2:13: ",
              {"inference.precision must be one of \"f32\", \"bf16\", \"f16\", got \"fp64\""});
  ExpectError("[inference]\nprecision = 32\n", "t.toml:2:13: ", {"inference.precision must be a string", "got 32"});
  ExpectError("[inference]\npolicy = \"fast\"\n", "t.toml:2:10: ",
              {"inference.policy must be one of \"latency\", \"throughput\", got \"fast\""});
  ExpectError("[training]\noptimizer = \"rmsprop\"\n", "t.toml:2:13: ",
              {"training.optimizer must be one of sgd,adam,adamw, got \"rmsprop\""});
}

TEST(ConfigErrors, BadDevices) {
  ExpectError("[inference]\ndevices = \"cpu\"\n", "t.toml:2:11: ",
              {"inference.devices must be an array of device roles (e.g. [\"cpu\"]) or the string \"auto\""});
  ExpectError("[inference]\ndevices = []\n", "t.toml:2:11: ", {"inference.devices must list at least one device"});
  ExpectError("[inference]\ndevices = [\"cpu\", \"CUDA:0\"]\n", "t.toml:2:19: ",
              {"inference.devices[1] has a bad device role \"CUDA:0\"", "NAME:INDEX"});
  ExpectError("[inference]\ndevices = [\"opencl:x\"]\n", "t.toml:2:12: ", {"bad device role \"opencl:x\""});
  ExpectError("[inference]\ndevices = [\"cpu\", \"cpu\"]\n", "t.toml:2:19: ", {"lists \"cpu\" twice"});
  ExpectError("[inference]\ndevices = [1]\n", "t.toml:2:12: ", {"inference.devices[0] must be a device role string"});
  ExpectError("[inference]\ndevices = 3\n", "t.toml:2:11: ", {"inference.devices must be an array", "got 3"});
  ExpectError("[inference.placement]\nMatMul = \"gpu 0\"\n", "t.toml:2:10: ",
              {"inference.placement.MatMul has a bad device role \"gpu 0\""});
  ExpectError("[inference.placement]\nMatMul = \"auto\"\n", "t.toml:2:10: ", {"bad device role \"auto\""});
  ExpectError("[inference.placement]\nMatMul = 1\n", "t.toml:2:10: ", {"must be a device role string"});
}

TEST(ConfigErrors, BadUnits) {
  ExpectError("[inference.memory]\nmax_alloc_bytes = \"2 GiBs\"\n", "t.toml:2:19: ",
              {"inference.memory.max_alloc_bytes: bad byte size \"2 GiBs\"", "KiB"});
  ExpectError("[inference.memory]\nmax_alloc_bytes = 0\n", "t.toml:2:19: ",
              {"inference.memory.max_alloc_bytes must be a byte size >= 1, got 0"});
  ExpectError("[inference.memory]\ncpu = \"-3MB\"\n", "t.toml:2:7: ", {"inference.memory.cpu: bad byte size"});
  ExpectError("[inference.memory]\ncpu = true\n", "t.toml:2:7: ", {"must be a byte size", "got true"});
  ExpectError("[inference.memory]\ncpu = \"99999999TiB\"\n", "t.toml:2:7: ", {"too large"});
}

TEST(ConfigErrors, UnknownKeysNameTheKeyAndLine) {
  ExpectError("[inference]\ndevices = [\"cpu\"]\nthread = 2\n", "t.toml:3:1: ",
              {"unknown key 'inference.thread'", "did you mean 'threads'?"});
  ExpectError("[inferense]\nthreads = 2\n", "t.toml:1:2: ", {"unknown top-level key 'inferense'", "did you mean 'inference'"});
  ExpectError("threads = 2\n", "t.toml:1:1: ", {"unknown top-level key 'threads'"});
  ExpectError("[inference]\nlr = 0.1\n", "t.toml:2:1: ", {"unknown key 'inference.lr'", "put it in [training]"});
  ExpectError("[training]\nlearning_rate = 0.1\n", "t.toml:2:1: ", {"unknown key 'training.learning_rate'", "lr"});
  ExpectError("[inference.memory]\ncpuu = \"1GiB\"\n", "t.toml:2:1: ",
              {"unknown key 'inference.memory.cpuu'", "did you mean 'cpu'"});
  ExpectError("[inference.backend.cpux]\nthreads = 1\n", "t.toml:1:20: ",
              {"unknown backend 'inference.backend.cpux'", "did you mean 'cpu'"});
  ExpectError("[inference.backend]\ncpu = 1\n", "t.toml:2:7: ", {"inference.backend.cpu must be a table"});
  ExpectError("[inference.backend.cpu]\nlist = [1, 2]\n", "t.toml:2:8: ",
              {"inference.backend.cpu.list must be a string, integer, float or boolean, got an array"});
  ExpectError("[inference.dims]\nbatch = \"8\"\n", "t.toml:2:9: ", {"inference.dims.batch must be an integer >= 0"});
  ExpectError("[inference.dims]\nbatch = -1\n", "t.toml:2:9: ", {"got -1"});
  ExpectError("[inference.dims]\n\"a b\" = 1\n", "t.toml:2:1: ", {"bad dim name \"a b\""});
}

TEST(ConfigErrors, TrainingValues) {
  ExpectError("[training]\nlr = 0\n", "t.toml:2:6: ", {"training.lr must be a number in (0,", "got 0"});
  ExpectError("[training]\nlr = \"fast\"\n", "t.toml:2:6: ", {"training.lr must be a number, got \"fast\""});
  ExpectError("[training]\nepochs = 0\n", "t.toml:2:10: ", {"training.epochs must be an integer in [1,"});
  ExpectError("[training]\nbatch_size = 2.0\n", "t.toml:2:14: ", {"training.batch_size must be an integer, got 2"});
  ExpectError("[training]\nnesterov = 1\n", "t.toml:2:12: ", {"training.nesterov must be true or false"});
  ExpectError("[training]\nbeta1 = 1.0\n", "t.toml:2:9: ", {"training.beta1 must be a number in [0, 1)"});
  ExpectError("[training]\nloss = \"\"\n", "t.toml:2:8: ", {"training.loss must be a non-empty string"});
  ExpectError("[training]\nlr = nan\n", "t.toml:2:6: ", {"training.lr must be a number in"});
}

TEST(ConfigErrors, SyntaxErrors) {
  ExpectError("[inference]\nthreads = \n", "t.toml:2:", {"TOML syntax error"});
  ExpectError("[inference]\nthreads = 2\nthreads = 3\n", "t.toml:3:", {"TOML syntax error"});
  ExpectError("[inference\n", "t.toml:1:", {"TOML syntax error"});
}

TEST(ConfigErrors, FileErrors) {
  auto r = LoadConfigFile("/nonexistent/deploy.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  std::string path = WriteTemp("bad.toml", "[inference]\ndevices = [\"cpu\"]\n\nthreads = \"two\"\n");
  r = LoadConfigFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), path + ":4:11: inference.threads must be an integer >= 1, got \"two\"");
  SessionOptions o;
  Status st = o.Set("config", path);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind(path + ":4:11: ", 0), 0u) << st.message();
  EXPECT_EQ(o.threads, 0);
  fs::remove(path);
}

// Non-ASCII text: fine in comments and strings (values unchanged), an error
// elsewhere; control characters and invalid UTF-8 are located errors.
TEST(Config, UnicodeInStringsAndComments) {
  DeploymentConfig c = MustLoad(
      "# Réglages pour l'inférence — ÉÖ 中文 😀\n"
      "[inference]\n"
      "trace = \"traces/été-😀.json\"  # après\n"
      "[inference.placement]\n"
      "\"nœud_Ω\" = \"cpu\"\n"
      "'lit\\eral \"É\"' = \"cpu\"\n"
      "[inference.backend.cpu]\n"
      "a = 'C:\\dir\\É \"q\"'\n"
      "b = '''\nline1 'x' ''\n\"\"\" É \\ end'''\n"
      "c = \"\"\"\nÀ \\\n   trimmed \"\" \\\"\"\" z\"\"\"\n"
      "d = \"tab\\té\\u00e9\"\n"
      "e = ''''quoted É''''\n");
  EXPECT_EQ(c.inference.trace.value_or(""), "traces/été-😀.json");
  EXPECT_EQ(c.inference.placement.count("nœud_Ω"), 1u);
  EXPECT_EQ(c.inference.placement.count("lit\\eral \"É\""), 1u);
  const auto& b = c.inference.backend_options.at("cpu");
  EXPECT_EQ(b.at("a"), "C:\\dir\\É \"q\"");
  EXPECT_EQ(b.at("b"), "line1 'x' ''\n\"\"\" É \\ end");
  EXPECT_EQ(b.at("c"), "À trimmed \"\" \"\"\" z");
  EXPECT_EQ(b.at("d"), "tab\téé");
  EXPECT_EQ(b.at("e"), "'quoted É'");
  // Line numbers survive the rewriting.
  ExpectError("# é\n[inference]\ntrace = \"é\"\nthreads = \"é\"\n", "t.toml:4:11: ",
              {"inference.threads must be an integer >= 1, got \"é\""});

  ExpectError("[inference]\nthreads = 2 é\n", "t.toml:2:13: ",
              {"TOML syntax error: non-ASCII character outside a string or comment"});
  ExpectError("[inférence]\n", "t.toml:1:5: ", {"non-ASCII character outside a string or comment"});
  ExpectError("# ok\n# bad \xff\n", "t.toml:2:7: ", {"TOML syntax error: invalid UTF-8"});
  ExpectError("trace = \"\xc3\"\n", "t.toml:1:10: ", {"invalid UTF-8"});
  ExpectError("trace = \"\xed\xa0\x80\"\n", "t.toml:1:10: ", {"invalid UTF-8"});  // a surrogate
  ExpectError("[inference]\ntrace = \"a\x01\"\n", "t.toml:2:11: ",
              {"TOML syntax error: control character 0x01 is not allowed"});
  ExpectError("[\x01nference]\n", "t.toml:1:2: ", {"control character 0x01"});
  ExpectError("x = \"\\é\"\n", "t.toml:1:7: ", {"invalid escape sequence"});
  ExpectError("x = '''a''''''\n", "t.toml:1:9: ", {"too many quotes"});
  // CRLF line breaks are fine.
  DeploymentConfig crlf = MustLoad("[inference]\r\nthreads = 2\r\n");
  EXPECT_EQ(crlf.inference.threads.value_or(0), 2);
  ExpectError("[inference]\r\nthreads = 0\r\n", "t.toml:2:11: ", {"inference.threads"});
  ExpectError("[inference]\rthreads = 0\n", "t.toml:1:12: ", {"control character 0x0d"});
}

// Truncated and byte-mutated configs never crash: each loads or fails with a
// located InvalidArgument.
TEST(ConfigErrors, MalformedInputNeverCrashes) {
  const std::string full = kFull;
  uint32_t seed = 12345u;
  auto next = [&]() { return seed = seed * 1103515245u + 12345u; };
  auto check = [](const std::string& text) {
    auto r = LoadConfigString(text, "t.toml");
    if (r.ok()) return;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().rfind("t.toml", 0), 0u) << r.status().message();
  };
  for (size_t n = 0; n <= full.size(); n += 7) check(full.substr(0, n));
  const std::string uni = "# é\n[inference]\ntrace = '''\nÉ 'a' \\'''\n[inference.backend.cpu]\nx = \"\"\"é\\\n  y\"\"\"\n";
  for (size_t n = 0; n <= uni.size(); ++n) check(uni.substr(0, n));
  const char kBytes[] = "[]=\"'.,#\n 0aZ\x01\xff{}";
  for (int i = 0; i < 400; ++i) {
    std::string m = full;
    for (int k = 0; k < 3; ++k) m[(next() >> 8) % m.size()] = kBytes[(next() >> 8) % (sizeof kBytes - 1)];
    check(m);
  }
}

// ---- the example configs stay valid ----

TEST(Config, ExampleConfigsLoadAndApply) {
  fs::path dir = SourceDir() / "examples" / "configs";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".toml") continue;
    names.insert(e.path().filename().string());
    auto c = LoadConfigFile(e.path().string());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(c->inference.present || c->training.present) << e.path();
    for (Workload w : {Workload::kInference, Workload::kTraining}) {
      if (!c->Get(w).present) continue;
      SessionOptions o;
      Status st = o.ApplyConfig(*c, w);
      EXPECT_TRUE(st.ok()) << e.path() << " [" << WorkloadName(w) << "]: " << st.ToString();
    }
    std::ifstream f(e.path());
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find('#'), std::string::npos) << e.path() << " has no comments";
  }
  for (const char* want : {"latency_cpu.toml", "throughput_cpu.toml", "opencl_then_cpu.toml", "forced_split.toml",
                           "strict_opencl.toml", "auto.toml", "bf16.toml", "training.toml"})
    EXPECT_EQ(names.count(want), 1u) << want << " is missing from " << dir;
}

// ---- C API ----

TEST(ConfigCApi, LoadConfigStringRoundTrip) {
  tsr_options_t* o = nullptr;
  ASSERT_EQ(tsr_options_create(&o), nullptr);
  const char* text = "[inference]\ndevices = [\"cpu\"]\nthreads = 3\n[inference.dims]\nbatch = 4\n"
                     "[training]\nthreads = 6\nlr = 0.5\n";
  ASSERT_EQ(tsr_options_load_config_string(o, text, nullptr), nullptr);
  char* js = nullptr;
  ASSERT_EQ(tsr_options_json(o, &js), nullptr);
  auto j = nlohmann::json::parse(js);
  tsr_string_free(js);
  EXPECT_EQ(j.at("threads"), "3");
  EXPECT_EQ(j.at("dim.batch"), "4");
  EXPECT_EQ(j.at("devices"), "cpu");
  EXPECT_EQ(j.count("training.lr"), 0u);

  ASSERT_EQ(tsr_options_load_config_string(o, text, "training"), nullptr);
  ASSERT_EQ(tsr_options_json(o, &js), nullptr);
  j = nlohmann::json::parse(js);
  tsr_string_free(js);
  EXPECT_EQ(j.at("threads"), "6");
  EXPECT_EQ(j.at("training.lr"), "0.5");
  // A later tsr_options_set overrides.
  ASSERT_EQ(tsr_options_set(o, "threads", "1"), nullptr);
  ASSERT_EQ(tsr_options_json(o, &js), nullptr);
  EXPECT_EQ(nlohmann::json::parse(js).at("threads"), "1");
  tsr_string_free(js);

  tsr_status_t* s = tsr_options_load_config_string(o, "[inference]\nthreads = \"two\"\n", "inference");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(tsr_status_code(s), TSR_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(tsr_status_message(s), "<string>:2:11: inference.threads must be an integer >= 1, got \"two\"");
  tsr_status_free(s);
  s = tsr_options_load_config_string(o, text, "serving");
  ASSERT_NE(s, nullptr);
  EXPECT_NE(std::string(tsr_status_message(s)).find("unknown workload 'serving'"), std::string::npos);
  tsr_status_free(s);
  s = tsr_options_load_config_string(o, nullptr, nullptr);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(tsr_status_code(s), TSR_ERR_INVALID_ARGUMENT);
  tsr_status_free(s);
  s = tsr_options_load_config_string(nullptr, text, nullptr);
  ASSERT_NE(s, nullptr);
  tsr_status_free(s);
  // The failed loads left the options as they were.
  ASSERT_EQ(tsr_options_json(o, &js), nullptr);
  EXPECT_EQ(nlohmann::json::parse(js).at("threads"), "1");
  tsr_string_free(js);
  tsr_options_free(o);
}

TEST(ConfigCApi, CppWrapper) {
  tessera::Options o;
  o.LoadConfigString("[training]\nepochs = 2\n", "training").Set("threads", "1");
  char* js = nullptr;
  ASSERT_EQ(tsr_options_json(o.get(), &js), nullptr);
  auto j = nlohmann::json::parse(js);
  tsr_string_free(js);
  EXPECT_EQ(j.at("training.epochs"), "2");
  EXPECT_EQ(j.at("threads"), "1");
  try {
    o.LoadConfigString("[inference]\nopt_level = 9\n");
    ADD_FAILURE() << "no exception for a bad config";
  } catch (const tessera::Error& e) {
    EXPECT_EQ(e.code(), TSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("<string>:2:13: inference.opt_level must be at most 2"), std::string::npos)
        << e.what();
  }
}

TEST(ConfigCApi, ConfigOptionLoadsAFile) {
  std::string path = WriteTemp("capi.toml", "[inference]\nopt_level = 0\n[inference.backend.cpu]\nx = 1\n");
  tsr_options_t* o = nullptr;
  ASSERT_EQ(tsr_options_create(&o), nullptr);
  ASSERT_EQ(tsr_options_set(o, "config", path.c_str()), nullptr);
  char* js = nullptr;
  ASSERT_EQ(tsr_options_json(o, &js), nullptr);
  auto j = nlohmann::json::parse(js);
  tsr_string_free(js);
  EXPECT_EQ(j.at("opt_level"), "0");
  EXPECT_EQ(j.at("backend.cpu.x"), "1");
  tsr_status_t* s = tsr_options_set(o, "config", (path + "#training").c_str());
  ASSERT_NE(s, nullptr);
  EXPECT_NE(std::string(tsr_status_message(s)).find("no [training] table"), std::string::npos);
  tsr_status_free(s);
  tsr_options_free(o);
  fs::remove(path);
}

}  // namespace
}  // namespace tessera

// Dynamic shapes through the public C API: a model exported with symbolic
// batch and seq dims (scripts/gen_zoo.py) runs in one session at several
// sizes, in the order 0, 1, 2, 0, 1, 2 of its test_data_set_K folders (K < 3;
// set 3, batch 1, has its own CTest run_check_set3).
//
// Asserts: every output matches PyTorch's within rtol 1e-3 / atol 1e-4; the
// session holds one compiled variant per distinct input-shape set, so a size
// seen before does not compile again; the memory plan differs per size.
// Prints (never asserts) per size: compile_ms (describe's, of the variant just
// compiled), the wall time of the first run at that size (which includes the
// compile), of a second run right after, and the planned arena bytes; for a
// repeated size, the run time. docs/MODELS.md quotes these numbers. A missing
// model is a GTEST_SKIP.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/tessera.h"

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

struct StatusDeleter {
  void operator()(tsr_status_t* s) const { tsr_status_free(s); }
};
struct TensorDeleter {
  void operator()(tsr_tensor_t* t) const { tsr_tensor_free(t); }
};
struct SessionDeleter {
  void operator()(tsr_session_t* s) const { tsr_session_free(s); }
};
struct OptionsDeleter {
  void operator()(tsr_options_t* o) const { tsr_options_free(o); }
};
using TensorPtr = std::unique_ptr<tsr_tensor_t, TensorDeleter>;

// Empty when `s` is a success; else its code and message (and frees it).
std::string Err(tsr_status_t* raw) {
  std::unique_ptr<tsr_status_t, StatusDeleter> s(raw);
  if (!s) return "";
  return "code " + std::to_string(tsr_status_code(s.get())) + ": " + tsr_status_message(s.get());
}

std::string TakeString(char* s) {
  std::string out = s ? s : "";
  tsr_string_free(s);
  return out;
}

struct DataSet {
  std::vector<TensorPtr> inputs, outputs;
  std::string shape;  // the first input's dims, e.g. "2x16"
};

std::vector<int64_t> DimsOf(const tsr_tensor_t* t) {
  const int64_t* d = tsr_tensor_dims(t);
  return std::vector<int64_t>(d, d + tsr_tensor_rank(t));
}

// Loads DIR/input_J.pb and DIR/output_J.pb; "" on success.
std::string LoadSet(const fs::path& dir, size_t n_in, size_t n_out, DataSet* set) {
  for (int pass = 0; pass < 2; ++pass) {
    const size_t n = pass == 0 ? n_in : n_out;
    for (size_t j = 0; j < n; ++j) {
      fs::path p = dir / ((pass == 0 ? "input_" : "output_") + std::to_string(j) + ".pb");
      tsr_tensor_t* raw = nullptr;
      std::string e = Err(tsr_tensor_load_pb(p.c_str(), &raw, nullptr));
      if (!e.empty()) return p.string() + ": " + e;
      (pass == 0 ? set->inputs : set->outputs).emplace_back(raw);
    }
  }
  for (int64_t d : DimsOf(set->inputs[0].get())) set->shape += (set->shape.empty() ? "" : "x") + std::to_string(d);
  return "";
}

// Number of elements outside |a-b| <= atol + rtol*|b| (f32 outputs); -1 on a shape/dtype mismatch.
int64_t Mismatches(const tsr_tensor_t* got, const tsr_tensor_t* want, double* max_abs) {
  *max_abs = 0;
  if (tsr_tensor_dtype(got) != TSR_DTYPE_F32 || tsr_tensor_dtype(want) != TSR_DTYPE_F32) return -1;
  if (DimsOf(got) != DimsOf(want)) return -1;
  const float* a = static_cast<const float*>(tsr_tensor_data(const_cast<tsr_tensor_t*>(got)));
  const float* b = static_cast<const float*>(tsr_tensor_data(const_cast<tsr_tensor_t*>(want)));
  const size_t n = tsr_tensor_nbytes(got) / sizeof(float);
  int64_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const double diff = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(diff <= 1e-4 + 1e-3 * std::fabs(static_cast<double>(b[i])))) ++bad;
    if (diff > *max_abs) *max_abs = diff;
  }
  return bad;
}

class DynamicShapes : public ::testing::TestWithParam<const char*> {};

TEST_P(DynamicShapes, CompilesOncePerShapeAndMatchesPyTorch) {
  const fs::path dir = fs::path(TESSERA_MODELS_DIR) / "zoo" / GetParam();
  const fs::path model = dir / "model.onnx";
  std::vector<fs::path> set_dirs;
  for (int k = 0; k < 3 && fs::exists(dir / ("test_data_set_" + std::to_string(k)) / "input_0.pb"); ++k)
    set_dirs.push_back(dir / ("test_data_set_" + std::to_string(k)));
  if (!fs::exists(model) || set_dirs.size() < 3)
    GTEST_SKIP() << model << " or its 3 test data sets are missing (run: .venv/bin/python scripts/gen_zoo.py)";

  tsr_options_t* raw_opts = nullptr;
  ASSERT_EQ(Err(tsr_options_create(&raw_opts)), "");
  std::unique_ptr<tsr_options_t, OptionsDeleter> opts(raw_opts);
  ASSERT_EQ(Err(tsr_options_set(opts.get(), "devices", "cpu")), "");
  // One thread: the printed times are then comparable on a loaded 2-core CI machine.
  ASSERT_EQ(Err(tsr_options_set(opts.get(), "threads", "1")), "");

  auto t0 = std::chrono::steady_clock::now();
  tsr_session_t* raw_session = nullptr;
  ASSERT_EQ(Err(tsr_session_create_from_file(model.c_str(), opts.get(), &raw_session)), "");
  std::unique_ptr<tsr_session_t, SessionDeleter> session(raw_session);
  const double create_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  // The model's inputs really are symbolic: otherwise this test proves nothing.
  const size_t n_in = tsr_session_input_count(session.get()), n_out = tsr_session_output_count(session.get());
  std::vector<const char*> in_names(n_in);
  for (size_t i = 0; i < n_in; ++i) {
    int32_t dtype = 0;
    size_t rank = 0;
    const int64_t* dims = nullptr;
    ASSERT_EQ(Err(tsr_session_input_info(session.get(), i, &in_names[i], &dtype, &rank, &dims, nullptr)), "");
    ASSERT_GE(rank, 2u);
    EXPECT_EQ(dims[0], -1) << "input " << in_names[i] << " dim 0 is not symbolic";
    EXPECT_EQ(dims[1], -1) << "input " << in_names[i] << " dim 1 is not symbolic";
  }
  char* describe = nullptr;
  ASSERT_EQ(Err(tsr_session_describe_json(session.get(), &describe)), "");
  EXPECT_FALSE(json::parse(TakeString(describe)).value("compiled", true))
      << "a session with unbound symbolic dims compiled before its first run";

  std::vector<DataSet> sets(set_dirs.size());
  for (size_t k = 0; k < sets.size(); ++k) ASSERT_EQ(LoadSet(set_dirs[k], n_in, n_out, &sets[k]), "");

  std::printf("%s: session created in %.1f ms (nothing compiled: dims unbound)\n", GetParam(), create_ms);
  std::printf("  %-4s %-6s %-9s %12s %14s %12s %12s\n", "run", "size", "variants", "compile ms", "1st run ms",
              "run ms", "arena bytes");
  std::vector<std::string> seen;
  std::vector<int64_t> arenas;  // per new size: the arena its plan asks for
  for (size_t r = 0; r < 2 * sets.size(); ++r) {
    const DataSet& s = sets[r % sets.size()];
    const bool is_new = std::find(seen.begin(), seen.end(), s.shape) == seen.end();
    if (is_new) seen.push_back(s.shape);

    std::vector<const tsr_tensor_t*> ins;
    for (const auto& t : s.inputs) ins.push_back(t.get());
    std::vector<TensorPtr> owned;
    // Runs once; the wall time of that run in ms, or -1 on failure (reported).
    auto run_once = [&]() -> double {
      std::vector<tsr_tensor_t*> outs(n_out, nullptr);
      auto r0 = std::chrono::steady_clock::now();
      std::string e =
          Err(tsr_session_run(session.get(), in_names.data(), ins.data(), n_in, nullptr, n_out, outs.data()));
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0).count();
      owned.clear();
      for (auto* o : outs) owned.emplace_back(o);
      EXPECT_EQ(e, "") << "run " << r << " at size " << s.shape;
      return e.empty() ? ms : -1;
    };
    const double run_ms = run_once();
    ASSERT_GE(run_ms, 0);
    for (size_t j = 0; j < n_out; ++j) {
      double max_abs = 0;
      int64_t bad = Mismatches(owned[j].get(), s.outputs[j].get(), &max_abs);
      EXPECT_EQ(bad, 0) << "run " << r << " size " << s.shape << " output " << j
                        << " (-1: shape or dtype differs); max abs error " << max_abs;
    }

    char* stats = nullptr;
    ASSERT_EQ(Err(tsr_session_stats_json(session.get(), &stats)), "");
    const json st = json::parse(TakeString(stats));
    EXPECT_EQ(st.value("variants", int64_t{-1}), static_cast<int64_t>(seen.size()))
        << "after run " << r << " at size " << s.shape << (is_new ? " (new size)" : " (size seen before)");
    ASSERT_EQ(Err(tsr_session_describe_json(session.get(), &describe)), "");
    const json d = json::parse(TakeString(describe));
    const int64_t arena = d["devices"].empty() ? -1 : d["devices"][0].value("arena_bytes", int64_t{-1});
    // describe reports the most recently *compiled* variant, so its numbers are this size's
    // only on a run that compiled.
    if (is_new) {
      // Every size here has a different element count, so a re-planned arena differs too.
      EXPECT_GT(arena, 0) << "size " << s.shape;
      EXPECT_EQ(std::find(arenas.begin(), arenas.end(), arena), arenas.end())
          << "size " << s.shape << " reuses an earlier size's arena size " << arena << ": not re-planned?";
      arenas.push_back(arena);
      // The same size again right away: what the first run cost beyond a warm run.
      const double again_ms = run_once();
      ASSERT_GE(again_ms, 0);
      std::printf("  %-4zu %-6s %-9zu %12.1f %14.2f %12.2f %12lld\n", r, s.shape.c_str(), seen.size(),
                  d.value("compile_ms", -1.0), run_ms, again_ms, static_cast<long long>(arena));
    } else {
      std::printf("  %-4zu %-6s %-9zu %12s %14s %12.2f %12s\n", r, s.shape.c_str(), seen.size(), "(cached)", "",
                  run_ms, "");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, DynamicShapes,
                         ::testing::Values("bert_encoder_manual_op13", "bert_encoder_manual_op17",
                                           "bert_encoder_torch_op13", "bert_encoder_torch_op17",
                                           "gpt_decoder_op13", "gpt_decoder_op17"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

}  // namespace

// Tessera training vs PyTorch 1.13 (issue 9, "Done when" lines 1-2). The
// references are made by scripts/gen_train_refs.py into models/train_*:
//   * train_mlp, train_cnn: the same initial weights (the ONNX initializers),
//     the same batches (digits "train" split in file order, step k = rows
//     [k*32, k*32+32) wrapping, pixel/16) and the same optimizer as
//     torch_ref.json give the same 50 losses, each within 1e-4 relative.
//   * train_block (nn.TransformerEncoderLayer): d loss / d param of
//     loss = sum(out * w) matches autograd for every parameter within 1e-4
//     relative to the tensor's largest |grad|: max_i |g_i - ref_i| <= 1e-4 * max_i |ref_i|.
// The measured maxima are printed ("[torch-match] ...") in the test log.
// Missing references skip with the command that makes them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "compiler/autodiff/autodiff.h"
#include "compiler/autodiff/params.h"
#include "compiler/pass.h"
#include "graph/graph.h"
#include "graph/onnx/onnx_import.h"
#include "runtime/backend_registry.h"
#include "runtime/datasets.h"
#include "runtime/options.h"
#include "runtime/session.h"
#include "runtime/safetensors.h"
#include "runtime/training_session.h"

namespace tessera {
namespace {

using nlohmann::json;

constexpr double kTol = 1e-4;  // issue 9: "within 1e-4 relative"; never loosened

std::string ModelPath(const std::string& model, const std::string& file) {
  return std::string(TESSERA_MODELS_DIR) + "/" + model + "/" + file;
}

bool FileExists(const std::string& p) { return std::ifstream(p).good(); }

bool CpuBackendUsable() {
  const LoadedBackend* b = BackendRegistry::Get().Find("cpu");
  return b && b->usable();
}

// Parses a JSON file; `err` gets the reason on failure.
bool ReadJson(const std::string& path, json* out, std::string* err) {
  std::ifstream f(path);
  if (!f) {
    *err = "cannot open " + path;
    return false;
  }
  *out = json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) {
    *err = path + " is not valid JSON";
    return false;
  }
  return true;
}

constexpr const char* kRegen = "(.venv/bin/python scripts/gen_train_refs.py --out models makes it)";

// ---- MLP / CNN: loss curves -------------------------------------------------------

// TrainingOptions equivalent to torch_ref.json's optimizer block.
TrainingOptions OptionsFromRef(const json& ref) {
  const json& o = ref.at("optimizer");
  TrainingOptions t;
  t.loss.kind = "cross_entropy";
  t.loss.output = "logits";
  t.loss.label_input = "labels";
  t.optimizer.kind = o.at("kind").get<std::string>();
  t.optimizer.weight_decay = o.value("weight_decay", 0.f);
  if (t.optimizer.kind == "sgd") {
    t.optimizer.momentum = o.value("momentum", 0.f);
    t.optimizer.dampening = o.value("dampening", 0.f);
    t.optimizer.nesterov = o.value("nesterov", false);
  } else {
    t.optimizer.beta1 = o.at("beta1").get<float>();
    t.optimizer.beta2 = o.at("beta2").get<float>();
    t.optimizer.epsilon = o.at("epsilon").get<float>();
  }
  t.lr.kind = "constant";
  t.lr.base_lr = ref.at("lr").get<double>();
  return t;
}

void MatchLossCurve(const std::string& model, bool image_shape) {
  const std::string onnx = ModelPath(model, "model.onnx");
  const std::string refp = ModelPath(model, "torch_ref.json");
  if (!FileExists(onnx) || !FileExists(refp)) GTEST_SKIP() << model << " references are missing " << kRegen;
  if (!CpuBackendUsable()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  json ref;
  std::string err;
  ASSERT_TRUE(ReadJson(refp, &ref, &err)) << err;
  const std::vector<double> want = ref.at("losses").get<std::vector<double>>();
  const int64_t batch = ref.at("batch_size").get<int64_t>();
  ASSERT_EQ(want.size(), 50u);
  ASSERT_EQ(ref.at("optimizer").value("amsgrad", false), false);

  auto data = LoadDigits("train", image_shape);
  if (!data.ok() && data.status().code() == StatusCode::kNotFound) GTEST_SKIP() << data.status().ToString();
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->size(), ref.at("data").at("rows").get<int64_t>());

  // The batches must be torch's before the losses can be (data_check is torch's step 0 / 49).
  {
    auto x0 = TakeRows(data->features, 0, batch);
    ASSERT_TRUE(x0.ok()) << x0.status().ToString();
    double sum = 0;
    for (int64_t i = 0; i < x0->num_elements(); ++i) sum += x0->GetAsDouble(i);
    EXPECT_NEAR(sum, ref.at("data_check").at("step0_feature_sum").get<double>(), 1e-6) << "step 0 features differ";
    for (const auto& [key, step] : {std::pair<const char*, int64_t>{"step0_labels", 0}, {"step49_labels", 49}}) {
      auto y = TakeRows(data->labels, step * batch, batch);
      ASSERT_TRUE(y.ok()) << y.status().ToString();
      const std::vector<int64_t> wl = ref.at("data_check").at(key).get<std::vector<int64_t>>();
      ASSERT_EQ(static_cast<int64_t>(wl.size()), y->num_elements());
      for (int64_t i = 0; i < y->num_elements(); ++i)
        ASSERT_EQ(static_cast<int64_t>(y->GetAsDouble(i)), wl[i]) << key << "[" << i << "]";
    }
  }

  const TrainingOptions topts = OptionsFromRef(ref);
  SessionOptions opts;  // cpu, optimizing pipeline, f32
  auto ts = TrainingSession::FromFile(onnx, topts, opts);
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  TrainingSession& s = **ts;

  const json running = ref.value("running_after_step1", json::object());
  // Every torch parameter is trained (and nothing else, e.g. no BatchNorm running statistic).
  std::vector<std::string> got_params = s.param_names();
  std::vector<std::string> want_params = ref.at("params").get<std::vector<std::string>>();
  std::sort(got_params.begin(), got_params.end());
  std::sort(want_params.begin(), want_params.end());
  EXPECT_EQ(got_params, want_params);

  double max_rel = 0;
  int64_t worst = -1, first_bad = -1;
  for (int64_t k = 0; k < static_cast<int64_t>(want.size()); ++k) {
    auto x = TakeRows(data->features, k * batch, batch);
    auto y = TakeRows(data->labels, k * batch, batch);
    ASSERT_TRUE(x.ok() && y.ok()) << "TakeRows failed at step " << k;
    auto r = s.Step({{"x", &*x}, {"labels", &*y}});
    ASSERT_TRUE(r.ok()) << "step " << k << ": " << r.status().ToString();
    const double rel = std::fabs(r->loss - want[k]) / std::fabs(want[k]);
    EXPECT_LE(rel, kTol) << model << " step " << k << ": tessera " << r->loss << " vs torch " << want[k]
                         << (k == 0 ? " (the forward pass or the loss differs)"
                                    : first_bad < 0 ? " (first divergent step: the forward pass matched at step 0, "
                                                      "so the updates differ: gradients or optimizer)"
                                                    : "");
    if (rel > kTol && first_bad < 0) first_bad = k;
    if (!(rel <= max_rel)) max_rel = rel, worst = k;  // also catches NaN
    EXPECT_EQ(r->step, k + 1);
    EXPECT_TRUE(r->updated);
    if (k == 0 && !running.empty()) {
      // BatchNorm running mean/var after one step, from a checkpoint: PyTorch's momentum and unbiased variance.
      const std::string ck = ::testing::TempDir() + "/torch_match_" + model + "_step1.safetensors";
      ASSERT_TRUE(s.SaveCheckpoint(ck).ok());
      auto c = ReadSafetensors(ck);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      for (const auto& [name, vals] : running.items()) {
        const Tensor* t = c->Find(name);
        ASSERT_NE(t, nullptr) << name << " is not in the checkpoint";
        ASSERT_EQ(t->num_elements(), static_cast<int64_t>(vals.size())) << name;
        double dmax = 0, vmax = 0;
        for (int64_t i = 0; i < t->num_elements(); ++i) {
          const double w = vals[static_cast<size_t>(i)].get<double>();
          dmax = std::max(dmax, std::fabs(t->GetAsDouble(i) - w));
          vmax = std::max(vmax, std::fabs(w));
        }
        EXPECT_LE(dmax, 1e-5 * std::max(vmax, 1e-3)) << model << ": " << name << " after step 1 differs by " << dmax;
      }
      std::remove(ck.c_str());
    }
  }
  std::printf("[torch-match] %s: 50 losses, max relative difference %.3g (step %lld), tolerance %.0e\n",
              model.c_str(), max_rel, static_cast<long long>(worst), kTol);
  ::testing::Test::RecordProperty("max_rel_diff", std::to_string(max_rel));
  // Eval mode after the 50 steps: the test split's loss equals torch's eval loss. Only without BatchNorm:
  // with it, AdamW turns the (mathematically zero) gradients of the conv biases in front of a BatchNorm
  // into rounding-noise steps of size ~lr, which move the running means differently in each framework
  // (the training losses do not see it). The CNN's running statistics are checked after step 1 instead.
  if (ref.contains("eval_after_steps") && !image_shape) {
    auto test = LoadDigits("test", image_shape);
    ASSERT_TRUE(test.ok()) << test.status().ToString();
    auto e = s.Eval({{"x", &test->features}, {"labels", &test->labels}});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    const double want_eval = ref.at("eval_after_steps").at("loss").get<double>();
    const double rel = std::fabs(e->loss - want_eval) / std::fabs(want_eval);
    std::printf("[torch-match] %s: eval loss after 50 steps %.7g vs torch %.7g, relative difference %.3g\n",
                model.c_str(), e->loss, want_eval, rel);
    EXPECT_LE(rel, kTol) << model << ": eval loss after 50 steps " << e->loss << " vs torch " << want_eval;
  }
}

TEST(TorchMatch, MlpSgdMomentumLossCurve) { MatchLossCurve("train_mlp", /*image_shape=*/false); }

TEST(TorchMatch, CnnBatchNormAdamWLossCurve) { MatchLossCurve("train_cnn", /*image_shape=*/true); }

// A step without the label input fails and names it (no crash, no silent zero loss).
TEST(TorchMatch, StepWithoutLabelsIsAnError) {
  const std::string onnx = ModelPath("train_mlp", "model.onnx");
  if (!FileExists(onnx)) GTEST_SKIP() << onnx << " is missing " << kRegen;
  if (!CpuBackendUsable()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  TrainingOptions t;
  t.loss.output = "logits";
  t.optimizer.kind = "sgd";
  t.lr.base_lr = 0.05;
  auto ts = TrainingSession::FromFile(onnx, t, SessionOptions{});
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  std::vector<float> xs(4 * 64, 0.5f);
  Tensor x = Tensor::FromVector<float>(DType::kF32, {4, 64}, xs);
  auto r = (*ts)->Step({{"x", &x}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("labels"), std::string::npos) << r.status().ToString();
}

// ---- transformer block: gradients -------------------------------------------------

// Constant folding's evaluator for this test: runs the node (all inputs constant) as a one-node
// graph through an ordinary Session on the CPU backend.
Result<std::vector<Tensor>> EvaluateNode(const Node& n, int64_t opset) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", opset);
  g->set_opset("tessera", 1);
  std::vector<Value*> ins;
  for (size_t i = 0; i < n.num_inputs(); ++i) {
    const Value* v = n.input(i);
    if (!v) {
      ins.push_back(nullptr);
      continue;
    }
    if (!v->constant()) return Unsupported(n.Describe(), ": input ", i, " is not constant");
    ins.push_back(g->AddConstant("fold_in" + std::to_string(i), *v->constant()));
  }
  Node* c = g->AddNode(n.op_type(), ins, n.num_outputs(), "", n.domain());
  for (const auto& [k, a] : n.attrs()) c->set_attr(k, a);
  std::vector<std::string> names;
  for (size_t o = 0; o < c->num_outputs(); ++o) {
    g->AddOutput(c->output(o));
    names.push_back(c->output(o)->name());
  }
  TSR_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::FromGraph(std::move(g), SessionOptions{}));
  std::vector<Tensor> res;
  TSR_RETURN_IF_ERROR(s->Run({}, names, &res));
  return res;
}

TEST(TorchMatch, TransformerBlockGradients) {
  const std::string onnx = ModelPath("train_block", "model.onnx");
  const std::string gradp = ModelPath("train_block", "grads.json");
  const std::string metap = ModelPath("train_block", "meta.json");
  if (!FileExists(onnx) || !FileExists(gradp) || !FileExists(metap))
    GTEST_SKIP() << "train_block references are missing " << kRegen;
  if (!CpuBackendUsable()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  json grads, meta;
  std::string err;
  ASSERT_TRUE(ReadJson(gradp, &grads, &err)) << err;
  ASSERT_TRUE(ReadJson(metap, &meta, &err)) << err;
  const std::vector<int64_t> dims = meta.at("shape").get<std::vector<int64_t>>();
  const std::vector<float> xs = meta.at("x").get<std::vector<float>>();
  const std::vector<float> ws = meta.at("w").get<std::vector<float>>();
  const std::vector<double> out_ref = meta.at("out").get<std::vector<double>>();
  const double loss_ref = meta.at("loss").get<double>();

  auto gr = ImportOnnxFile(onnx);
  ASSERT_TRUE(gr.ok()) << gr.status().ToString();
  std::unique_ptr<Graph> g = std::move(gr).value();
  // Differentiate w.r.t. torch's parameters, each of which must be a trainable initializer. (The
  // export also holds float constants from Constant nodes, e.g. the attention scale; those are not
  // torch parameters and stay constants here.)
  std::vector<std::string> params;
  {
    const std::vector<std::string> trainable = autodiff::TrainableInitializers(*g);
    for (auto it = grads.begin(); it != grads.end(); ++it) {
      ASSERT_NE(std::find(trainable.begin(), trainable.end(), it.key()), trainable.end())
          << it.key() << " is not a trainable initializer of " << onnx;
      params.push_back(it.key());
    }
    ASSERT_EQ(params.size(), 12u);
  }
  auto init = autodiff::LiftParameters(*g, params);
  ASSERT_TRUE(init.ok()) << init.status().ToString();

  // The exporter computes MultiheadAttention's reshape targets from Shape(x); autodiff needs static
  // shapes, so fold those first (x's shape is static in this export), as a training pipeline would.
  {
    PassManager pm;
    pm.Add(CreateInferShapesPass());
    pm.Add(CreateFoldConstantsPass());
    pm.Add(CreateEliminateDeadCodePass());
    pm.Add(CreateInferShapesPass());
    PassContext ctx;
    ctx.evaluator = [opset = g->OpsetFor("")](const Node& n) { return EvaluateNode(n, opset); };
    Status fs = pm.Run(*g, ctx);
    ASSERT_TRUE(fs.ok()) << fs.ToString();
  }

  ASSERT_EQ(g->outputs().size(), 1u);
  Value* out = g->outputs()[0];
  const std::string out_name = out->name();
  Value* w = g->AddConstant("torch_match.w", Tensor::FromVector<float>(DType::kF32, dims, ws));
  Node* mul = g->AddNode("Mul", {out, w}, 1);
  Node* sum = g->AddNode("ReduceSum", {mul->output(0)}, 1);
  sum->set_attr("keepdims", Attribute::Int(0));
  Value* loss = sum->output(0);
  g->AddOutput(loss);
  const std::string loss_name = loss->name();
  auto info = autodiff::BuildGradientGraph(*g, loss_name, params);
  ASSERT_TRUE(info.ok()) << info.status().ToString();

  auto s = Session::FromGraph(std::move(g), SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Tensor x = Tensor::FromVector<float>(DType::kF32, dims, xs);
  std::vector<std::pair<std::string, const Tensor*>> feeds{{"x", &x}};
  for (const auto& [n, t] : *init) feeds.push_back({n, &t});
  std::vector<std::string> want_names{loss_name, out_name};
  want_names.insert(want_names.end(), info->grads.begin(), info->grads.end());
  std::vector<Tensor> res;
  Status st = (*s)->Run(feeds, want_names, &res);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(res.size(), want_names.size());

  // Forward first: a wrong output makes every gradient wrong.
  ASSERT_EQ(res[1].num_elements(), static_cast<int64_t>(out_ref.size()));
  double out_max = 0, out_diff = 0;
  for (size_t i = 0; i < out_ref.size(); ++i) {
    out_max = std::max(out_max, std::fabs(out_ref[i]));
    out_diff = std::max(out_diff, std::fabs(res[1].GetAsDouble(static_cast<int64_t>(i)) - out_ref[i]));
  }
  EXPECT_LE(out_diff, kTol * out_max) << "forward output differs from torch";
  const double loss_rel = std::fabs(res[0].GetAsDouble(0) - loss_ref) / std::fabs(loss_ref);
  EXPECT_LE(loss_rel, kTol) << "loss " << res[0].GetAsDouble(0) << " vs torch " << loss_ref;

  double worst = 0;
  std::string worst_name;
  for (size_t p = 0; p < params.size(); ++p) {
    const std::vector<double> ref = grads.at(params[p]).get<std::vector<double>>();
    const Tensor& gt = res[2 + p];
    ASSERT_EQ(gt.num_elements(), static_cast<int64_t>(ref.size())) << params[p];
    double gmax = 0, diff = 0;
    int64_t at = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      gmax = std::max(gmax, std::fabs(ref[i]));
      const double d = std::fabs(gt.GetAsDouble(static_cast<int64_t>(i)) - ref[i]);
      if (!(d <= diff)) diff = d, at = static_cast<int64_t>(i);
    }
    ASSERT_GT(gmax, 0) << params[p] << ": torch's gradient is all zero; the check would be vacuous";
    const double rel = diff / gmax;
    EXPECT_LE(rel, kTol) << "d loss / d " << params[p] << "[" << at << "]: tessera " << gt.GetAsDouble(at)
                         << " vs torch " << ref[at] << " (max |grad| " << gmax << ")";
    std::printf("[torch-match] train_block: %-28s max |diff| / max |grad| = %.3g\n", params[p].c_str(), rel);
    if (!(rel <= worst)) worst = rel, worst_name = params[p];
  }
  std::printf("[torch-match] train_block: %zu gradients, worst %.3g (%s), forward %.3g, loss %.3g, tolerance %.0e\n",
              params.size(), worst, worst_name.c_str(), out_max > 0 ? out_diff / out_max : 0.0, loss_rel, kTol);
  ::testing::Test::RecordProperty("max_rel_diff", std::to_string(worst));
}

}  // namespace
}  // namespace tessera

// Autodiff on imported ONNX models (models/: cnn, gpt_tiny, bert_tiny): every
// float initializer becomes a parameter, a loss is appended, and the gradients
// (computed by the optimizing pipeline, f32) are spot-checked against central
// differences on the elements with the largest gradients.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "compiler/autodiff/params.h"
#include "graph/onnx/onnx_import.h"
#include "tests/unit/training/gradcheck_util.h"

namespace tessera::training_test {
namespace {

bool FileExists(const std::string& p) { return std::ifstream(p).good(); }

struct Feed {
  std::string name;
  Tensor t;
};

// Appends the loss to `g` (returns its value) given the model's output.
using LossFn = std::function<Value*(Graph& g, Value* out)>;

void CheckModel(const std::string& model, const std::vector<Feed>& inputs, const LossFn& add_loss) {
  if (!HaveCpuBackend()) GTEST_SKIP() << "the cpu backend plugin is not built/loadable";
  const std::string path = std::string(TESSERA_MODELS_DIR) + "/" + model + "/model.onnx";
  if (!FileExists(path)) GTEST_SKIP() << path << " is missing (scripts/gen_models.py makes it)";
  auto gr = ImportOnnxFile(path);
  ASSERT_TRUE(gr.ok()) << gr.status().ToString();
  std::unique_ptr<Graph> g = std::move(gr).value();
  std::vector<std::string> params = autodiff::TrainableInitializers(*g);
  ASSERT_FALSE(params.empty());
  auto init = autodiff::LiftParameters(*g, params);
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  Value* loss = add_loss(*g, g->outputs()[0]);
  ASSERT_NE(loss, nullptr);
  g->AddOutput(loss);
  auto info = autodiff::BuildGradientGraph(*g, loss->name(), params);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const std::string loss_name = loss->name();

  SessionOptions o;  // default optimizing pipeline
  auto s = Session::FromGraph(std::move(g), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();

  std::vector<Tensor> values;  // parameter values, perturbed in place
  for (auto& [n, t] : *init) values.push_back(Tensor::FromBytes(t.dtype(), t.dims(), t.raw(), t.nbytes()).value());
  auto feeds = [&]() {
    std::vector<std::pair<std::string, const Tensor*>> f;
    for (const Feed& in : inputs) f.push_back({in.name, &in.t});
    for (size_t i = 0; i < params.size(); ++i) f.push_back({params[i], &values[i]});
    return f;
  };
  std::vector<std::string> want{loss_name};
  want.insert(want.end(), info->grads.begin(), info->grads.end());
  std::vector<Tensor> res;
  Status st = (*s)->Run(feeds(), want, &res);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto loss_at = [&]() {
    std::vector<Tensor> r;
    Status rs = (*s)->Run(feeds(), {loss_name}, &r);
    EXPECT_TRUE(rs.ok()) << rs.ToString();
    return rs.ok() ? r[0].GetAsDouble(0) : std::nan("");
  };

  // Parameters to probe: first, last and every third one in between.
  int checked = 0;
  for (size_t p = 0; p < params.size(); p += (p + 3 < params.size() ? 3 : std::max<size_t>(1, params.size() - 1 - p))) {
    const Tensor& grad = res[1 + p];
    ASSERT_EQ(grad.num_elements(), values[p].num_elements()) << params[p];
    int64_t best = 0;
    double gmax = 0;
    for (int64_t i = 0; i < grad.num_elements(); ++i)
      if (std::fabs(grad.GetAsDouble(i)) > gmax) gmax = std::fabs(grad.GetAsDouble(i)), best = i;
    if (gmax < 1e-4) continue;  // e.g. a bias the loss barely sees; other params carry the check
    float* w = static_cast<float*>(values[p].mutable_raw());
    const float keep = w[best];
    const double h = 1e-2 * std::max(1.0, static_cast<double>(std::fabs(keep)));
    w[best] = static_cast<float>(keep + h);
    const double lp = loss_at();
    w[best] = static_cast<float>(keep - h);
    const double lm = loss_at();
    w[best] = keep;
    const double fd = (lp - lm) / (2 * h);
    EXPECT_NEAR(grad.GetAsDouble(best), fd, 5e-2 * std::fabs(fd) + 2e-3 * gmax + 1e-4)
        << model << ": d loss / d " << params[p] << "[" << best << "]";
    ++checked;
  }
  EXPECT_GE(checked, 2) << model;
}

Value* Node1(Graph& g, const std::string& op, const std::vector<Value*>& in, const std::string& domain = "",
             std::map<std::string, Attribute> attrs = {}) {
  Node* n = g.AddNode(op, in, 1, "", domain);
  for (auto& [k, a] : attrs) n->set_attr(k, a);
  return n->output(0);
}

TEST(ModelGradients, Cnn) {
  std::vector<float> x(3 * 32 * 32);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.01f * static_cast<float>(i));
  CheckModel("cnn", {{"input", Tensor::FromVector<float>(DType::kF32, {1, 3, 32, 32}, x)}},
             [](Graph& g, Value* out) {
               Value* labels = g.AddConstant("train_labels", Tensor::FromVector<int64_t>(DType::kI64, {1}, {3}));
               return Node1(g, "SoftmaxCrossEntropy", {out, labels}, "tessera");
             });
}

TEST(ModelGradients, GptTinyEmbeddingsAttentionLayerNorm) {
  std::vector<int64_t> ids(32), labels(32);
  for (int i = 0; i < 32; ++i) ids[i] = (i * 7) % 100, labels[i] = (i * 13 + 1) % 100;
  CheckModel("gpt_tiny", {{"ids", Tensor::FromVector<int64_t>(DType::kI64, {2, 16}, ids)}},
             [labels](Graph& g, Value* out) {
               Value* shape = g.AddConstant("train_shape", Tensor::FromVector<int64_t>(DType::kI64, {2}, {32, 100}));
               Value* flat = Node1(g, "Reshape", {out, shape});
               Value* l = g.AddConstant("train_labels", Tensor::FromVector<int64_t>(DType::kI64, {32}, labels));
               return Node1(g, "SoftmaxCrossEntropy", {flat, l}, "tessera");
             });
}

TEST(ModelGradients, BertTinyMaskedAttention) {
  std::vector<float> x(2 * 16 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.37f * static_cast<float>(i));
  std::vector<uint8_t> mask(32, 0);
  for (int i = 12; i < 16; ++i) mask[16 + i] = 1;  // pad the tail of sample 1
  std::vector<float> target(2 * 16 * 64);
  for (size_t i = 0; i < target.size(); ++i) target[i] = 0.5f * std::sin(0.11f * static_cast<float>(i));
  CheckModel("bert_tiny",
             {{"x", Tensor::FromVector<float>(DType::kF32, {2, 16, 64}, x)},
              {"pad_mask", Tensor::FromVector<uint8_t>(DType::kBool, {2, 16}, mask)}},
             [target](Graph& g, Value* out) {
               Value* t = g.AddConstant("train_target", Tensor::FromVector<float>(DType::kF32, {2, 16, 64}, target));
               return Node1(g, "MSE", {out, t}, "tessera", {{"reduction", Attribute::String("sum")}});
             });
}

}  // namespace
}  // namespace tessera::training_test

// libFuzzer target: bytes -> ONNX import -> type/shape inference -> O1 pass
// pipeline (no constant evaluator) -> partition onto a fake device that claims
// every node -> lowering to a Plan.
//
// Contract checked: on any input the core returns a Status (ok or an error)
// and never crashes, hangs, leaks or hits undefined behaviour (the target is
// built with -fsanitize=fuzzer,address,undefined). No backend or GPU is used.
//
// The same function is linked into `fuzz_replay` (a plain main over files),
// which CTest runs over tests/fuzz/regressions/ and the seed corpus.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compiler/lower.h"
#include "compiler/partition.h"
#include "compiler/pass.h"
#include "compiler/specialize.h"
#include "graph/graph.h"
#include "graph/onnx/onnx_import.h"
#include "graph/op_schema.h"

namespace {

using namespace tessera;

// Caps that keep one input's work bounded (the fuzzer's own rss/timeout
// limits then only fire on real bugs).
constexpr int64_t kMaxTensorBytes = int64_t{64} << 20;
constexpr int64_t kMaxArenaBytes = int64_t{256} << 20;
constexpr int64_t kSymbolicDimValue = 2;

// Binds every symbolic/unknown dim of the runtime inputs to a small constant,
// as a session does with concrete input shapes before compiling.
void BindInputShapes(Graph& g) {
  for (Value* in : g.RuntimeInputs()) {
    if (!in->shape().has_rank()) continue;
    std::vector<int64_t> dims;
    for (const Dim& d : in->shape().dims()) dims.push_back(d.is_known() ? d.value : kSymbolicDimValue);
    in->set_type(TensorType{in->dtype(), Shape::FromInts(dims)});
  }
}

void RunOne(const uint8_t* data, size_t size) {
  ImportOptions opts;
  opts.max_tensor_bytes = kMaxTensorBytes;
  auto imported = ImportOnnxBytes(data, size, /*model_dir=*/"", opts);
  if (!imported.ok()) return;
  std::unique_ptr<Graph> g = std::move(imported).value();
  BindInputShapes(*g);
  if (!InferGraphTypes(*g).ok()) return;

  auto pm = BuildPipeline(1);
  if (!pm.ok()) return;
  PassContext ctx;
  ctx.opt_level = 1;
  ctx.verify = true;
  ctx.max_fold_bytes = kMaxTensorBytes;
  if (!pm->Run(*g, ctx).ok()) return;
  // Inputs whose values decide shapes would need a specialized variant; the
  // session stops there too.
  if (!FindValueInputs(*g).empty()) return;

  DeviceCandidate all{"cpu", [](const tsr_graph_view& v, std::vector<tsr_claim>* claims) -> Status {
                        for (uint32_t i = 0; i < v.num_nodes; ++i) (*claims)[i].supported = 1;
                        return Status::Ok();
                      }};
  auto part = PartitionGraph(*g, {all}, /*strict=*/false);
  if (!part.ok()) return;
  auto plan = LowerToPlan(std::move(g), *part, {{"cpu", "cpu", 0}}, kMaxArenaBytes);
  (void)plan;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RunOne(data, size);
  return 0;
}

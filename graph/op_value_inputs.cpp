// Which inputs of each op are needed as values at compile time
// (OpSchema::value_inputs). One table, applied after every schema group has
// registered, so a group that replaces an op's schema keeps the entry.
#include <utility>

#include "graph/op_schema.h"

namespace tessera {

namespace {

struct Entry {
  const char* op;
  std::vector<int> inputs;  // -1 = every input (data-dependent output shape)
};

const Entry kValueInputs[] = {
    // Shape-setting inputs: the output shape depends on their values.
    {"Reshape", {1}}, {"Expand", {1}}, {"Tile", {1}}, {"ConstantOfShape", {0}}, {"Range", {0, 1, 2}},
    {"Squeeze", {1}}, {"Unsqueeze", {1}}, {"Slice", {1, 2, 3, 4}}, {"Pad", {1, 2, 3}}, {"Split", {1}},
    {"OneHot", {1}}, {"TopK", {1}}, {"Resize", {1, 2, 3}}, {"Upsample", {1}}, {"CenterCropPad", {1, 2}},
    {"AffineGrid", {1}}, {"Col2Im", {1, 2}}, {"MaxUnpool", {2}}, {"Trilu", {1}},
    {"ReduceSum", {1}}, {"ReduceMean", {1}}, {"ReduceMax", {1}}, {"ReduceMin", {1}}, {"ReduceProd", {1}},
    {"ReduceL1", {1}}, {"ReduceL2", {1}}, {"ReduceLogSum", {1}}, {"ReduceLogSumExp", {1}},
    {"ReduceSumSquare", {1}},
    {"DFT", {1, 2}}, {"STFT", {1, 3}}, {"HannWindow", {0}}, {"HammingWindow", {0}}, {"BlackmanWindow", {0}},
    {"MelWeightMatrix", {0, 1, 2, 3, 4}},
    // Parameter inputs that kernels read when they are built.
    {"CumSum", {1}}, {"Clip", {1, 2}}, {"Dropout", {1, 2}},
    // Control flow decided at compile time (compiler/passes/inline_control_flow.cpp).
    {"If", {0}}, {"Loop", {0, 1}},
    // Output shapes that depend on the data itself.
    {"NonZero", {-1}}, {"Unique", {-1}}, {"Compress", {-1}}, {"NonMaxSuppression", {-1}},
};

}  // namespace

void ApplyValueInputs(OpRegistry& r) {
  for (const Entry& e : kValueInputs)
    if (OpSchema* s = r.FindMutable("", e.op)) s->value_inputs = e.inputs;
}

}  // namespace tessera

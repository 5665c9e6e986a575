// Trainable parameters of an imported model. ONNX models carry weights as
// initializers (constants); training feeds and updates them every step, so
// they must become runtime graph inputs (the optimizer pass requires that,
// and constant folding must not bake them into the plan).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "graph/graph.h"

namespace tessera::autodiff {

// Names of the initializers that are trainable by default: floating-point
// constants read by some node, except inputs whose values the op needs at
// compile time (OpSchema::value_inputs: Reshape shapes, Resize scales, Clip
// bounds, ...) and BatchNormalization's running mean/var (inputs 3, 4).
// Order: first use in node order.
std::vector<std::string> TrainableInitializers(const Graph& g);

// Turns the named initializers into graph inputs (their constant data is
// removed from the graph) and returns their initial values, in `names` order.
// Errors: a name that is not a constant, or not floating-point.
Result<std::vector<std::pair<std::string, Tensor>>> LiftParameters(Graph& g, const std::vector<std::string>& names);

}  // namespace tessera::autodiff

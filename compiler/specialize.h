// Value specialization: graph inputs whose values the compiler needs.
//
// Some inputs decide shapes or kernel parameters (Reshape's shape, Reduce*
// axes, TopK's K: OpSchema::value_inputs), and some ops have output shapes
// that depend on the data (NonZero). When such a value comes from a graph
// input, the runtime compiles one variant per distinct value of that input,
// with the input made a constant, the way TensorRT treats shape tensors. The
// session keys variants by input shapes plus the values of these inputs.
#pragma once

#include <map>
#include <set>
#include <string>

#include "graph/graph.h"
#include "graph/tensor.h"

namespace tessera {

// Names of g's runtime inputs whose values are needed to compile g (after
// shape inference with concrete input shapes): the inputs that reach
//   - a declared value input of a node (OpSchema::value_inputs) that is not
//     constant (the node's other inputs matter by shape only), or
//   - any input of a data-dependent op (value_inputs = {-1}) whose output
//     shapes are not known yet.
// Ops without declared value inputs never cause specialization: an output
// shape that inference leaves unknown there is reported by lowering instead of
// silently compiling a variant per input value.
// through chains of nodes other than Shape and Size (which need only shapes).
std::set<std::string> FindValueInputs(const Graph& g);

// Makes each named runtime input a constant holding `values[name]`; its dtype
// and shape must match the input's.
Status SpecializeInputs(Graph& g, const std::map<std::string, const Tensor*>& values);

}  // namespace tessera

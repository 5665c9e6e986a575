// Human-readable text form of a Graph, for --dump-after, debugging and tests.
// The format is for people, not for parsing back:
//
//   graph main (opset ai.onnx=17) {
//     input %x : f32[batch,3]
//     const %w : f32[3,4] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, ...}
//     %y = MatMul(%x, %w) : f32[batch,4]  # matmul_0
//     %a, %b = Split[axis=1](%y) : f32[batch,2], f32[batch,2]  # split_1
//     output %a, %b
//   }
//
// Omitted optional inputs/outputs print as `_`; at most 8 elements of a
// constant are shown; subgraph attributes print indented below their node.
#pragma once

#include <string>

#include "graph/graph.h"

namespace tessera {

std::string PrintGraph(const Graph& g);

}  // namespace tessera

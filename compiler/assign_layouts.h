// Layout assignment: after partitioning, each segment's device may ask for
// non-plain memory layouts (oneDNN's nhwc / nChw16c, ...) for the values that
// stay inside the segment, so consecutive kernels that like the same layout
// exchange data without reordering at every node edge.
//
// Protocol (backend.h `choose_layouts`): the device says, per value of a
// segment view, which layout its producer would like to write (and the bytes a
// buffer needs in it), and, per node input, whether the node can read the
// value in that layout. The rule here, for each value with a preferred layout L
// produced in the segment:
//   - no reader accepts L                 -> plain (the producer converts inside);
//   - every reader accepts L              -> L, no conversion;
//   - some readers accept L, others don't -> L for the producer and the
//     accepting readers, plus ONE `tessera.LayoutConvert` node (from=L, to="")
//     writing a new plain value that the other readers are rewired to.
// Graph inputs/outputs, constants, values captured by subgraphs and values
// produced in another segment stay plain. (A value that is a graph output but
// also read by accepting nodes stays plain: renaming graph outputs is not
// allowed.)
//
// The result is written into the graph as node attributes (the compile call
// sees them through the node views; the .tplan keeps them with the graph):
//   _tsr_out_layouts       strings, one per output ("" = plain)
//   _tsr_out_layout_bytes  ints, one per output (bytes of its buffer; 0 = plain size)
//   _tsr_in_layouts        strings, one per input ("" = plain)
// Only nodes that touch a non-plain value carry them. The plan's buffers copy
// the layout and size (compiler/lower.cpp).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "compiler/partition.h"
#include "graph/graph.h"
#include "tessera/backend.h"

namespace tessera {

inline constexpr const char* kOutLayoutsAttr = "_tsr_out_layouts";
inline constexpr const char* kOutLayoutBytesAttr = "_tsr_out_layout_bytes";
inline constexpr const char* kInLayoutsAttr = "_tsr_in_layouts";

// Asks one device for its preferences (backend.h `choose_layouts`). `values`
// arrives sized num_values and zero-filled, `accepts` sized to the total
// number of node inputs and zero-filled.
using LayoutChooser = std::function<Status(const tsr_graph_view& view, std::vector<tsr_layout_choice>* values,
                                           std::vector<uint8_t>* accepts)>;

struct LayoutStats {
  int64_t nodes_before = 0;
  int64_t nodes_after = 0;
  int64_t non_plain_values = 0;  // values that got a non-plain layout
  int64_t conversions = 0;       // LayoutConvert nodes inserted
};

// Runs the rule above on every segment whose device has a chooser
// (`choosers[segment.device]`, empty function = no preferences). Adds the
// LayoutConvert nodes to the graph (re-sorted topologically) and to their
// segment, right after the producer.
Result<LayoutStats> AssignLayouts(Graph& g, Partition& part, const std::vector<LayoutChooser>& choosers);

// Layout of output `index` of `producer` ("" = plain, also for nullptr) and
// its buffer bytes (0 = plain size), as AssignLayouts recorded them.
std::string OutputLayout(const Node* producer, int index);
uint64_t OutputLayoutBytes(const Node* producer, int index);

}  // namespace tessera

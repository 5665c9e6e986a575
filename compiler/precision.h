// The precision policy step: runs between partitioning and lowering.
//
// With a reduced compute precision (bf16 or f16), every segment's compute ops
// (Conv, MatMul, Gemm, tessera.FusedConv/FusedGemm/FusedMatMul,
// tessera.FusedAttention) and the elementwise/shape ops that consume their
// results are retyped to that dtype when the segment's device claims the
// retyped node (`claim` on a view with the reduced types). Then:
//   - f32 constants read by retyped nodes get a converted copy (converted once,
//     here; the f32 original stays when f32 nodes also read it);
//   - a non-constant f32 value read by a retyped node goes through one
//     Cast(to=reduced) (one per value, on the consumer's device);
//   - a retyped node's result read by an f32 node or by the caller goes through
//     one Cast(to=f32) whose output keeps the original value (and its name), so
//     graph outputs stay f32 with their names;
//   - LayerNormalization whose X is already reduced computes with X, scale,
//     bias and Y in the reduced type when the device claims that (its kernel
//     keeps the statistics in f32); the Mean/InvStdDev outputs stay f32;
//   - everything else stays f32: Softmax/LogSoftmax, other normalizations,
//     reductions, losses, and any node the device refuses in the reduced type;
//   - Cast(to=reduced) of Cast(to=f32) of a reduced value collapses to the value
//     (reduced -> f32 -> reduced is exact; f32 -> reduced -> f32 is not and stays).
// The graph's node order stays topological; the partition is rebuilt for the
// new node list (inserted casts join the segment of the node they serve).
#pragma once

#include <string>
#include <vector>

#include "compiler/partition.h"
#include "compiler/pass.h"
#include "graph/graph.h"

namespace tessera {

struct PrecisionReport {
  int64_t nodes_retyped = 0;       // nodes now computing in the reduced type
  int64_t nodes_refused = 0;       // candidates the device would not run reduced (kept f32)
  int64_t casts_inserted = 0;      // Cast nodes added at region edges
  int64_t cast_pairs_removed = 0;  // reduced->f32->reduced pairs collapsed
  int64_t weights_converted = 0;   // constants given a reduced copy
  std::vector<std::string> notes;  // one line per refused candidate: node, op, device's reason
};

// "f32"/"fp32" -> kF32, "bf16" -> kBF16, "f16"/"fp16" -> kF16; else InvalidArgument.
Result<DType> ParsePrecision(const std::string& name);

// Applies the policy for `compute` (kBF16 or kF16; kF32 returns `part`
// unchanged). `part` must come from PartitionGraph(g, devices, ...). Returns
// the partition of the rewritten graph. On error the graph may be partly
// rewritten (callers discard it).
Result<Partition> ApplyPrecision(Graph& g, const Partition& part, const std::vector<DeviceCandidate>& devices,
                                 DType compute, PrecisionReport* report);

// The step's line in the pass statistics ("apply_precision"; changes = casts inserted).
PassStat PrecisionPassStat(const PrecisionReport& r, int64_t nodes_before, int64_t nodes_after, double millis);

}  // namespace tessera

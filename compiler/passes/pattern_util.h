// Small predicates shared by the rewrite passes in compiler/passes/.
#pragma once

#include <optional>

#include "graph/graph.h"

namespace tessera {

// True when the node carries a subgraph (If/Loop/Scan bodies).
inline bool HasSubgraph(const Node& n) {
  for (const auto& [k, a] : n.attrs())
    if (a.type == AttrType::kGraph) return true;
  return false;
}

// Ops whose result differs between evaluations: never folded or merged.
inline bool IsNonDeterministic(const Node& n) {
  const std::string& op = n.op_type();
  return op == "RandomNormal" || op == "RandomUniform" || op == "RandomNormalLike" || op == "RandomUniformLike" ||
         op == "Multinomial" || op == "Bernoulli";
}

inline bool IsF32(const Value* v) { return v && v->dtype() == DType::kF32; }

// The value of a one-element numeric constant, else nullopt.
inline std::optional<double> ScalarConstant(const Value* v) {
  const Tensor* t = v ? v->constant() : nullptr;
  if (!t || t->num_elements() != 1 || t->dtype() == DType::kString || t->dtype() == DType::kBool) return std::nullopt;
  return t->GetAsDouble(0);
}

// Two dims that are equal at run time wherever they appear: the same known
// value, or the same named symbol (unnamed unknown dims never compare equal).
inline bool SameRuntimeDim(const Dim& a, const Dim& b) {
  if (a.is_known() || b.is_known()) return a.is_known() && b.is_known() && a.value == b.value;
  return !a.symbol.empty() && a.symbol == b.symbol;
}

}  // namespace tessera

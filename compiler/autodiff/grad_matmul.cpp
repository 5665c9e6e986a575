// Gradient rules of MatMul and Gemm, expressed with MatMul/Gemm and Transpose.
#include <numeric>

#include "compiler/autodiff/autodiff.h"

namespace tessera::autodiff {
namespace {

// Swaps the last two axes of v (rank >= 2).
Value* TransposeLast2(GradBuilder& b, Value* v) {
  if (!b.ok()) return nullptr;
  const int r = v->shape().rank();
  std::vector<int64_t> perm(r);
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[r - 2], perm[r - 1]);
  return b.Op("Transpose", {v}, {{"perm", Attribute::Ints(perm)}});
}

// dy with a size-1 axis inserted at `axis` (negative: from the end), static shapes.
Value* InsertAxis(GradBuilder& b, Value* v, int axis) {
  std::vector<int64_t> d = b.StaticDims(v, "gradient");
  if (!b.ok()) return nullptr;
  const int r = static_cast<int>(d.size());
  const int at = axis < 0 ? r + 1 + axis : axis;
  d.insert(d.begin() + at, 1);
  return b.ReshapeTo(v, d);
}

// MatMul with a 1-D operand (NumPy semantics: a 1-D A is a row [1,K] whose
// axis is dropped from Y, a 1-D B a column [K,1]); the gradients are products
// and sums (Mul/ReduceSum), and the driver reduces broadcast batch dims.
Status GradMatMulVector(GradContext& c) {
  Value* a = c.in(0);
  Value* bm = c.in(1);
  const int ra = a->shape().rank(), rb = bm->shape().rank();
  Value* dy = c.dy[0];
  if (ra == 1 && rb == 1) {  // dot product: Y scalar
    if (c.need(0)) c.dx[0] = c.b.Op("Mul", {dy, bm});
    if (c.need(1)) c.dx[1] = c.b.Op("Mul", {dy, a});
  } else if (rb == 1) {  // Y[..., M] = A[..., M, K] @ B[K]
    Value* d = InsertAxis(c.b, dy, -1);  // [..., M, 1]
    if (c.need(0)) c.dx[0] = c.b.Op("Mul", {d, bm});  // [..., M, K]
    if (c.need(1)) c.dx[1] = c.b.Op("Mul", {d, a});   // [..., M, K] -> reduced to [K]
  } else {  // Y[..., N] = A[K] @ B[..., K, N]
    Value* d = InsertAxis(c.b, dy, -2);  // [..., 1, N]
    if (c.need(0)) {
      const int rd = d ? d->shape().rank() : 0;
      c.dx[0] = c.b.ReduceSum(c.b.Op("Mul", {d, bm}), {rd - 1}, false);  // [..., K] -> reduced to [K]
    }
    if (c.need(1)) {
      std::vector<int64_t> ad = c.b.StaticDims(a, "A");
      if (c.b.ok()) c.dx[1] = c.b.Op("Mul", {c.b.ReshapeTo(a, {ad[0], 1}), d});  // [..., K, N]
    }
  }
  return c.b.status();
}

// Y = A @ B with rank(A), rank(B) >= 2 (batch dims broadcast; the driver
// reduces them): dA = dY @ B^T, dB = A^T @ dY.
Status GradMatMul(GradContext& c) {
  Value* a = c.in(0);
  Value* bm = c.in(1);
  if (!a->shape().has_rank() || !bm->shape().has_rank())
    return c.b.Error("MatMul gradients need operands of known rank");
  if (a->shape().rank() < 2 || bm->shape().rank() < 2) return GradMatMulVector(c);
  if (c.need(0)) c.dx[0] = c.b.Op("MatMul", {c.dy[0], TransposeLast2(c.b, bm)});
  if (c.need(1)) c.dx[1] = c.b.Op("MatMul", {TransposeLast2(c.b, a), c.dy[0]});
  return Status::Ok();
}

// Y = alpha * op(A) @ op(B) + beta * C.
Status GradGemm(GradContext& c) {
  const int64_t ta = c.node.GetInt("transA", 0), tb = c.node.GetInt("transB", 0);
  const float alpha = c.node.GetFloat("alpha", 1.f), beta = c.node.GetFloat("beta", 1.f);
  Value* a = c.in(0);
  Value* bm = c.in(1);
  Value* dy = c.dy[0];
  auto gemm = [&](Value* x, Value* y, int64_t tx, int64_t ty) {
    return c.b.Op("Gemm", {x, y},
                  {{"alpha", Attribute::Float(alpha)}, {"transA", Attribute::Int(tx)}, {"transB", Attribute::Int(ty)}});
  };
  if (c.need(0)) c.dx[0] = ta == 0 ? gemm(dy, bm, 0, 1 - tb) : gemm(bm, dy, tb, 1);
  if (c.need(1)) c.dx[1] = tb == 0 ? gemm(a, dy, 1 - ta, 0) : gemm(dy, a, 1, ta);
  if (c.need(2)) c.dx[2] = beta == 1.f ? dy : c.b.Op("Mul", {dy, c.b.Scalar(beta, dy->dtype())});
  return Status::Ok();
}

}  // namespace

void RegisterMatMulGrads(std::map<std::string, GradRule>& r) {
  r["MatMul"] = GradMatMul;
  r["Gemm"] = GradGemm;
}

}  // namespace tessera::autodiff

// Parameter blocks shared by host code and GPU kernels (plain C++, no GPU
// headers: the host fills them, kernels receive them by value). Sizes stay
// well under the 4 KiB kernel-parameter limit.
#pragma once

#include <stdint.h>

namespace tessera::gpu {

constexpr int kMaxRank = 8;
constexpr int kMaxEwInputs = 8;
constexpr int kMaxEwConsts = 16;
constexpr int kMaxEwInstr = 32;

// Elementwise opcodes: 0..23 are exactly tessera.FusedElementwise's table
// (graph/ops_fused_elementwise.cpp); 24.. are extra activations used by
// epilogues and single ops.
enum EwOp : int32_t {
  kEwAdd = 0, kEwSub, kEwMul, kEwDiv, kEwMax, kEwMin, kEwPow,
  kEwNeg, kEwAbs, kEwRelu, kEwLeakyRelu, kEwSigmoid, kEwTanh, kEwExp, kEwLog, kEwSqrt, kEwReciprocal, kEwErf,
  kEwGelu, kEwGeluTanh, kEwClip, kEwHardSigmoid, kEwHardSwish, kEwSoftplus,
  kEwSilu,   // x * sigmoid(x)
  kEwSwish,  // x * sigmoid(p1 * x)
  kEwCopy,   // a
  kEwNumOps
};

// A register program over float registers: inputs 0..num_inputs-1, constants
// num_inputs..num_inputs+num_consts-1, then one register per instruction.
// Instruction k computes op[k](reg[a[k]], reg[b[k]]; p1[k], p2[k]); the last
// instruction's register is the output. Input j's element for output index
// (i0..i_{rank-1}) is at sum(i_d * strides[j][d]); `flat[j]` = 1 when input j
// is laid out exactly like the output (element i at i), 2 when it is a scalar.
struct EwProgram {
  int32_t num_inputs = 0, num_consts = 0, num_instr = 0, rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t strides[kMaxEwInputs][kMaxRank] = {};
  int32_t flat[kMaxEwInputs] = {};
  float consts[kMaxEwConsts] = {};
  int32_t op[kMaxEwInstr] = {};
  int16_t a[kMaxEwInstr] = {}, b[kMaxEwInstr] = {};
  float p1[kMaxEwInstr] = {}, p2[kMaxEwInstr] = {};
};

// Element copy with arbitrary strides on both sides (elements, may be 0 or
// negative): dst[dst_offset + sum(i_d*dst_strides[d])] = src[src_offset + sum(i_d*src_strides[d])]
// for every index i over dims. Transpose, Expand, Slice, Concat, Split use it.
struct CopyGeom {
  int32_t rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t src_strides[kMaxRank] = {}, dst_strides[kMaxRank] = {};
  int64_t src_offset = 0, dst_offset = 0;
};

// Broadcast geometry for up to three operands (binary ops, Where): output
// dims and each operand's element strides (0 on broadcast axes).
struct BcastGeom {
  int32_t rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t strides[3][kMaxRank] = {};
};

// Comparison/logic opcodes (bool output) and integer arithmetic.
enum CmpOp : int32_t { kCmpEqual = 0, kCmpGreater, kCmpGreaterOrEqual, kCmpLess, kCmpLessOrEqual, kCmpAnd, kCmpOr,
                       kCmpXor };
enum ReduceOp : int32_t { kRedSum = 0, kRedMean, kRedMax, kRedMin };

}  // namespace tessera::gpu

namespace tessera::gpu {

// tessera.FusedAttention: Y[b,h,i,:] = softmax_j(Q[b,h,i,:].K[b,h,j,:] * scale
// + mask[b,h,i,j] [causal: j <= i]) V[b,h,j,:]. Q [B,H,Sq,D], K [B,H,Sk,D],
// V [B,H,Sk,Dv], Y [B,H,Sq,Dv], all contiguous. mask_kind: 0 none, 1 bool
// (0 = the score becomes -inf), 2 f32 additive, 3 additive in Q's dtype;
// mstride = the mask's element strides over [B,H,Sq,Sk] (0 where broadcast).
constexpr int kAttnKeyTile = 32;       // keys per shared-memory tile (one per lane)
constexpr int kAttnMaxHeadDim = 256;   // D and Dv limit (8 output dims per lane)
struct AttnArgs {
  int64_t B = 0, H = 0, Sq = 0, Sk = 0, D = 0, Dv = 0;
  float scale = 1.f;
  int32_t causal = 0, mask_kind = 0;
  int64_t mstride[4] = {0, 0, 0, 0};
  int32_t rows_per_block = 4;  // query rows (warps) per block
};

}  // namespace tessera::gpu

namespace tessera::gpu {

// 2-D max / average pooling over x = [NC, H, W] -> y = [NC, OH, OW]. Pads
// (top, left, bottom, right) may be asymmetric; the output shape is given
// (ceil_mode is already in it). Average: divisor = window positions inside
// the padded input (count_include_pad = 1) or inside the input (0). A max
// window with no valid element gives -inf.
struct PoolArgs {
  int64_t NC = 0, H = 0, W = 0, OH = 0, OW = 0;
  int32_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int32_t pt = 0, pl = 0, pb = 0, pr = 0;
  int32_t is_max = 1, count_include_pad = 0;
};

}  // namespace tessera::gpu

namespace tessera::gpu {

// Plain row-major batched GEMM (the fallback when the vendor BLAS offers no
// algorithm): Y[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], op = transpose
// when ta/tb. A[b] is at A + b*stride_a (0 = shared), likewise B, C, Y;
// lda/ldb/ldc are the row strides of the stored (untransposed) matrices.
// C may be null (beta ignored).
struct GemmArgs {
  int64_t M = 0, N = 0, K = 0, batch = 1;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int32_t ta = 0, tb = 0;
  float alpha = 1.f, beta = 0.f;
};

}  // namespace tessera::gpu

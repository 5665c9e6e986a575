// Library-backed CUDA kernels: MatMul / Gemm / tessera.FusedMatMul /
// tessera.FusedGemm through cuBLASLt, Conv / tessera.FusedConv and
// through cuDNN 9's legacy API (libcudnn_cnn). Pooling is in cuda_ops.cpp.
//
// Row-major GEMM through column-major cuBLASLt: C[M,N] = A[M,K] B[K,N] is
// computed as C^T = B^T A^T, i.e. cuBLASLt's "A" is our B and its "B" is our
// A, with D an N x M column-major matrix = our row-major C. Bias (1-D over
// C's last dim) is then cuBLASLt's per-row bias of D, so BIAS / RELU_BIAS /
// GELU_BIAS epilogues apply directly (cuBLASLt's GELU is the tanh form, used
// only for GeluTanh). Other activations, Gemm's broadcast C with beta != 1,
// and residuals that are not a full [M,N] run as one elementwise epilogue
// kernel after the GEMM.
//
// cuDNN's legacy API is marked deprecated in cuDNN 9 but is still shipped and
// supported; the warning is silenced for this file only.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "backends/common/gpu_kernels/geometry.h"
#include "backends/cuda/cuda_launch.h"
#include "backends/cuda/cuda_ops.h"

namespace tessera::cuda {
namespace {

using plugin::NodeAttrs;

constexpr uint64_t kGemmWorkspace = 32ull << 20;   // cuBLASLt workspace (Hopper recommendation)
constexpr uint64_t kConvWorkspaceMax = 512ull << 20;

bool IsFloat(int32_t dt) { return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_F16 || dt == TSR_DTYPE_BF16; }

cudaDataType_t CudaType(int32_t dt) {
  return dt == TSR_DTYPE_F16 ? CUDA_R_16F : dt == TSR_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}
cudnnDataType_t DnnType(int32_t dt) {
  return dt == TSR_DTYPE_F16 ? CUDNN_DATA_HALF : dt == TSR_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

Err BlasErr(cublasStatus_t s, const std::string& who, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Err::Ok();
  return MakeErr(s == CUBLAS_STATUS_ALLOC_FAILED ? TSR_ERR_OUT_OF_MEMORY : TSR_ERR_INTERNAL, "%s: %s failed: cuBLAS status %d",
                 who.c_str(), what, static_cast<int>(s));
}
Err DnnErr(cudnnStatus_t s, const std::string& who, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return Err::Ok();
  return MakeErr(s == CUDNN_STATUS_NOT_SUPPORTED ? TSR_ERR_UNSUPPORTED : TSR_ERR_INTERNAL, "%s: %s failed: %s",
                 who.c_str(), what, cudnnGetErrorString(s));
}
#define TSR_TRY(expr)        \
  do {                       \
    Err _e = (expr);         \
    if (!_e.ok()) return _e; \
  } while (0)

int64_t Prod(const std::vector<int64_t>& d, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e && i < d.size(); ++i) p *= d[i];
  return p;
}

// ---- GEMM ------------------------------------------------------------------------------------

// Elementwise epilogue after the GEMM: y = act(y + beta * addend [+ residual]).
struct Epilogue {
  bool needed = false;
  int32_t act = gpu::kEwCopy;
  float p1 = 0, p2 = 0;
  gpu::EwProgram prog;
  int addend_input = -1, residual_input = -1;  // node input indices (-1 = none)
};

class GemmKernel final : public GpuKernel {
 public:
  ~GemmKernel() override {
    if (desc_) cublasLtMatmulDescDestroy(desc_);
    for (cublasLtMatrixLayout_t l : {la_, lb_, lc_, ld_})
      if (l) cublasLtMatrixLayoutDestroy(l);
  }
  uint64_t workspace_bytes() const override { return ws_; }

  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    const void* A = in[0];
    const void* B = in[1];
    void* Y = out[0];
    const void* Cmat = nullptr;
    if (c_input_ >= 0) {
      Cmat = in[c_input_];
      if (!Cmat) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: missing C input", who_.c_str());
    }
    if (naive_) {
      TSR_TRY(LaunchErr(LaunchGemmNaive(dtype_, gemm_, A, B, Cmat, Y, c.stream), who_, "fallback GEMM"));
    } else {
      TSR_TRY(RunLt(c, A, B, Cmat, Y, in));
    }
    if (epi_.needed) {
      // Program inputs: Y, then the addend, then the residual (BuildEpilogue's order).
      const void* used[gpu::kMaxEwInputs] = {Y};
      int k = 1;
      if (epi_.addend_input >= 0) used[k++] = in[epi_.addend_input];
      if (epi_.residual_input >= 0) used[k++] = in[epi_.residual_input];
      return LaunchErr(LaunchEwProgram(dtype_, epi_.prog, used, Y, numel_, c.stream), who_, "GEMM epilogue");
    }
    return Err::Ok();
  }

  Err RunLt(const LaunchCtx& c, const void* A, const void* B, const void* Cmat, void* Y, const void* const* in) const {
    // The descriptor carries the bias pointer: set and use it under a lock
    // (execute may run concurrently; the bias is usually a constant, so the
    // pointer rarely changes).
    std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
    if (bias_input_ >= 0) {
      lock.lock();
      const void* bias = in[bias_input_];
      TSR_TRY(BlasErr(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
                      who_, "setting the bias pointer"));
    }
    if (c.workspace_bytes < ws_ && ws_ > 0)
      return MakeErr(TSR_ERR_INTERNAL, "%s: workspace of %llu bytes is smaller than the %llu the GEMM needs",
                     who_.c_str(), static_cast<unsigned long long>(c.workspace_bytes),
                     static_cast<unsigned long long>(ws_));
    // cuBLASLt operand order is swapped (see the file comment): "A" = our B.
    const void* c_or_y = Cmat ? Cmat : Y;
    TSR_TRY(BlasErr(cublasLtMatmul(c.lt, desc_, &alpha_, B, la_, A, lb_, Cmat ? &beta_ : &zero_, c_or_y, lc_, Y, ld_,
                                   have_algo_ ? &algo_ : nullptr, c.workspace, ws_, c.stream),
                    who_, "cublasLtMatmul"));
    return Err::Ok();
  }

  std::string who_;
  mutable std::mutex mu_;
  int32_t dtype_ = TSR_DTYPE_F32;
  int64_t numel_ = 0;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t la_ = nullptr, lb_ = nullptr, lc_ = nullptr, ld_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  bool have_algo_ = false;
  uint64_t ws_ = kGemmWorkspace;
  float alpha_ = 1.f, beta_ = 0.f, zero_ = 0.f;
  bool naive_ = false;   // cuBLASLt had no algorithm: the fallback kernel runs instead
  gpu::GemmArgs gemm_;   // the fallback's geometry
  int c_input_ = -1;     // node input fused as cuBLASLt's C (full [M,N] per batch)
  int bias_input_ = -1;  // node input used as the epilogue bias
  Epilogue epi_;
};

// Builds the elementwise epilogue program: y = act(y + beta*addend + residual).
Err BuildEpilogue(const NodeArgs& a, int addend, float beta, int residual, int32_t act, float p1, float p2,
                  Epilogue* e) {
  const std::vector<int64_t>& od = a.outputs[0]->dims;
  if (od.size() > static_cast<size_t>(gpu::kMaxRank)) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: rank too large", a.Describe().c_str());
  gpu::EwProgram& p = e->prog;
  p.rank = static_cast<int32_t>(od.size());
  for (size_t d = 0; d < od.size(); ++d) p.dims[d] = od[d];
  int n = 0;
  p.flat[n++] = 1;  // Y
  std::vector<int> regs;
  for (int idx : {addend, residual}) {
    if (idx < 0) continue;
    const TensorArg& t = *a.inputs[idx];
    if (t.dims == od) {
      p.flat[n] = 1;
    } else if (t.numel == 1) {
      p.flat[n] = 2;
    } else {
      std::vector<int64_t> st;
      Err er = BroadcastStrides(od, t.dims, &st);
      if (!er.ok()) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: input %d: %s", a.Describe().c_str(), idx, er.message.c_str());
      for (size_t d = 0; d < st.size(); ++d) p.strides[n][d] = st[d];
    }
    regs.push_back(n++);
  }
  p.num_inputs = n;
  p.num_consts = 1;
  p.consts[0] = beta;
  const int creg = n, base = n + 1;
  int k = 0, cur = 0;
  if (addend >= 0) {
    int src = regs[0];
    if (beta != 1.f) {
      p.op[k] = gpu::kEwMul; p.a[k] = static_cast<int16_t>(src); p.b[k] = static_cast<int16_t>(creg);
      src = base + k++;
    }
    p.op[k] = gpu::kEwAdd; p.a[k] = static_cast<int16_t>(cur); p.b[k] = static_cast<int16_t>(src);
    cur = base + k++;
  }
  if (residual >= 0) {
    p.op[k] = gpu::kEwAdd; p.a[k] = static_cast<int16_t>(cur); p.b[k] = static_cast<int16_t>(regs.back());
    cur = base + k++;
  }
  p.op[k] = act; p.a[k] = static_cast<int16_t>(cur); p.b[k] = -1; p.p1[k] = p1; p.p2[k] = p2;
  p.num_instr = k + 1;
  e->needed = true;
  e->addend_input = addend;
  e->residual_input = residual;
  return Err::Ok();
}

Err CreateGemmLike(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  const std::string op = a.node->op_type;
  const bool is_gemm = op == "Gemm" || op == "FusedGemm";
  const bool fused = std::string(a.node->domain) == "tessera";
  if (a.inputs.size() < 2 || !a.inputs[0] || !a.inputs[1] || !a.has_output(0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: needs A, B and an output", a.Describe().c_str());
  const TensorArg &A = *a.inputs[0], &B = *a.inputs[1], &Y = *a.outputs[0];
  const int32_t dt = A.dtype;
  if (!IsFloat(dt) || B.dtype != dt || Y.dtype != dt)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: A, B, Y must share one of f32/f16/bf16 (got %s, %s, %s)",
                   a.Describe().c_str(), plugin::DTypeName(A.dtype), plugin::DTypeName(B.dtype),
                   plugin::DTypeName(Y.dtype));
  NodeAttrs at = a.attrs();
  auto k = std::make_unique<GemmKernel>();
  k->who_ = a.Describe();
  k->dtype_ = dt;
  k->numel_ = Y.numel;
  int32_t act = gpu::kEwCopy;
  float p1 = 0, p2 = 0;
  if (fused) TSR_TRY(ParseActivation(a, &act, &p1, &p2));

  int64_t M, N, K, batch = 1;
  bool ta = false, tb = false;
  int64_t stride_a = 0, stride_b = 0;  // elements between batches (0 = broadcast)
  if (is_gemm) {
    if (A.dims.size() != 2 || B.dims.size() != 2)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Gemm needs 2-D A and B", a.Describe().c_str());
    ta = at.Int("transA", 0) != 0;
    tb = at.Int("transB", 0) != 0;
    M = ta ? A.dims[1] : A.dims[0];
    K = ta ? A.dims[0] : A.dims[1];
    N = tb ? B.dims[0] : B.dims[1];
    if ((tb ? B.dims[1] : B.dims[0]) != K)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inner dims differ (%lld vs %lld)", a.Describe().c_str(),
                     static_cast<long long>(K), static_cast<long long>(tb ? B.dims[1] : B.dims[0]));
    k->alpha_ = at.Float("alpha", 1.f);
  } else {
    if (A.dims.size() < 2 || B.dims.size() < 2)
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: MatMul with a 1-D operand is not supported on CUDA", a.Describe().c_str());
    M = A.dims[A.dims.size() - 2];
    K = A.dims.back();
    N = B.dims.back();
    if (B.dims[B.dims.size() - 2] != K)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: inner dims differ (%lld vs %lld)", a.Describe().c_str(),
                     static_cast<long long>(K), static_cast<long long>(B.dims[B.dims.size() - 2]));
    // Batch: Y's leading dims; A/B batches broadcast to them.
    const std::vector<int64_t> yb(Y.dims.begin(), Y.dims.end() - 2);
    const std::vector<int64_t> ab(A.dims.begin(), A.dims.end() - 2), bb(B.dims.begin(), B.dims.end() - 2);
    batch = Prod(yb, 0, yb.size());
    const int64_t na = Prod(ab, 0, ab.size()), nb = Prod(bb, 0, bb.size());
    // Folding: A with batch dims but B shared -> one big GEMM with M' = batch*M.
    if (nb == 1 && na == batch && batch > 1) {
      M *= batch;
      batch = 1;
    } else if (batch > 1) {
      // A batch is either full (== batch, same dims) or absent (1); anything else: per-batch loop.
      auto full = [&](const std::vector<int64_t>& d, int64_t n) {
        std::vector<int64_t> pad(yb.size() - std::min(yb.size(), d.size()), 1);
        pad.insert(pad.end(), d.begin(), d.end());
        return n == batch && pad == yb;
      };
      const bool fa = full(ab, na), fb = full(bb, nb);
      if ((fa || na == 1) && (fb || nb == 1)) {
        stride_a = fa ? M * K : 0;
        stride_b = fb ? K * N : 0;
      } else {
        return MakeErr(TSR_ERR_UNSUPPORTED,
                       "%s: MatMul batch broadcasting where both operands broadcast partially is not supported on CUDA",
                       a.Describe().c_str());
      }
    }
  }
  if (Y.numel != batch * M * N)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: output has %lld elements, expected %lld", a.Describe().c_str(),
                   static_cast<long long>(Y.numel), static_cast<long long>(batch * M * N));

  // Bias / C / residual routing.
  int bias_in = -1, addend_in = -1, residual_in = -1;
  float beta = 1.f;
  if (is_gemm) {
    beta = at.Float("beta", 1.f);
    if (a.has_input(2)) {
      const TensorArg& C = *a.inputs[2];
      if (C.dtype != dt) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: C's dtype differs from A's", a.Describe().c_str());
      if (C.numel == M * N && C.dims.size() == 2 && C.dims[0] == M) k->c_input_ = 2, k->beta_ = beta;
      else if (beta == 1.f && C.numel == N && (C.dims.size() == 1 || (C.dims.size() == 2 && C.dims[0] == 1)))
        bias_in = 2;
      else addend_in = 2;
    }
  } else if (fused) {
    if (a.has_input(2)) {
      if (a.inputs[2]->numel != N || a.inputs[2]->dtype != dt)
        return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: bias must be 1-D of %lld elements with A's dtype",
                       a.Describe().c_str(), static_cast<long long>(N));
      bias_in = 2;
    }
    if (at.Int("has_residual", 0) && a.has_input(3)) {
      const TensorArg& Z = *a.inputs[3];
      if (Z.dtype != dt) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: residual dtype differs", a.Describe().c_str());
      if (Z.dims == Y.dims && batch == 1) k->c_input_ = 3, k->beta_ = 1.f;
      else residual_in = 3;
    }
  }
  // cuBLASLt epilogue: bias with none/Relu/GeluTanh when nothing else needs a later pass.
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  const bool tail = addend_in >= 0 || residual_in >= 0;
  bool act_done = false;
  if (!tail) {
    if (act == gpu::kEwRelu) { epi = bias_in >= 0 ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU; act_done = true; }
    else if (act == gpu::kEwGeluTanh) { epi = bias_in >= 0 ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU; act_done = true; }
    else if (bias_in >= 0) epi = CUBLASLT_EPILOGUE_BIAS;
  }
  if (bias_in >= 0 && epi == CUBLASLT_EPILOGUE_DEFAULT) addend_in = bias_in, bias_in = -1;  // bias in the tail pass
  k->bias_input_ = bias_in;
  if (addend_in >= 0 || residual_in >= 0 || (!act_done && act != gpu::kEwCopy))
    TSR_TRY(BuildEpilogue(a, addend_in, is_gemm ? beta : 1.f, residual_in, act, p1, p2, &k->epi_));

  // Descriptors (see the file comment for the operand swap).
  const bool f32 = dt == TSR_DTYPE_F32;
  cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
  if (f32) {
    switch (a.options.f32_math) {
      case F32Math::kTf32: ct = CUBLAS_COMPUTE_32F_FAST_TF32; break;
      case F32Math::kBf16: ct = CUBLAS_COMPUTE_32F_FAST_16BF; break;
      case F32Math::kF16: ct = CUBLAS_COMPUTE_32F_FAST_16F; break;
      case F32Math::kExact: break;
    }
  }
  const cudaDataType_t t = CudaType(dt);
  TSR_TRY(BlasErr(cublasLtMatmulDescCreate(&k->desc_, ct, CUDA_R_32F), k->who_, "cublasLtMatmulDescCreate"));
  const cublasOperation_t opA = tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt A = our B
  const cublasOperation_t opB = ta ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt B = our A
  TSR_TRY(BlasErr(cublasLtMatmulDescSetAttribute(k->desc_, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA)), k->who_, "TRANSA"));
  TSR_TRY(BlasErr(cublasLtMatmulDescSetAttribute(k->desc_, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB)), k->who_, "TRANSB"));
  TSR_TRY(BlasErr(cublasLtMatmulDescSetAttribute(k->desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), k->who_, "EPILOGUE"));
  if (bias_in >= 0) {
    const cudaDataType_t bt = t;
    TSR_TRY(BlasErr(cublasLtMatmulDescSetAttribute(k->desc_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)), k->who_, "BIAS_DATA_TYPE"));
  }
  // Column-major shapes: our B (K x N row-major) is N x K col-major with ld N (transposed: K x N, ld K).
  const uint64_t a_rows = tb ? K : N, a_cols = tb ? N : K;
  const uint64_t b_rows = ta ? M : K, b_cols = ta ? K : M;
  TSR_TRY(BlasErr(cublasLtMatrixLayoutCreate(&k->la_, t, a_rows, a_cols, static_cast<int64_t>(a_rows)), k->who_, "layout A"));
  TSR_TRY(BlasErr(cublasLtMatrixLayoutCreate(&k->lb_, t, b_rows, b_cols, static_cast<int64_t>(b_rows)), k->who_, "layout B"));
  TSR_TRY(BlasErr(cublasLtMatrixLayoutCreate(&k->lc_, t, N, M, N), k->who_, "layout C"));
  TSR_TRY(BlasErr(cublasLtMatrixLayoutCreate(&k->ld_, t, N, M, N), k->who_, "layout D"));
  if (batch > 1) {
    const int32_t bc = static_cast<int32_t>(batch);
    const int64_t sa = stride_b, sb = stride_a, sd = M * N;  // swapped operands
    for (auto [l, s] : {std::pair{k->la_, sa}, std::pair{k->lb_, sb}, std::pair{k->lc_, sd}, std::pair{k->ld_, sd}}) {
      TSR_TRY(BlasErr(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof(bc)), k->who_, "BATCH_COUNT"));
      TSR_TRY(BlasErr(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &s, sizeof(s)), k->who_, "BATCH_OFFSET"));
    }
  }
  // Heuristic: the best algorithm for 16-byte aligned operands within the workspace.
  if (a.lt) {
    cublasLtMatmulPreference_t pref = nullptr;
    TSR_TRY(BlasErr(cublasLtMatmulPreferenceCreate(&pref), k->who_, "preference"));
    const uint64_t ws = kGemmWorkspace;
    const uint32_t align = 16;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align));
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(a.lt, k->desc_, k->la_, k->lb_, k->lc_, k->ld_, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s == CUBLAS_STATUS_SUCCESS && found > 0) {
      k->algo_ = res.algo;
      k->have_algo_ = true;
      k->ws_ = std::max<uint64_t>(res.workspaceSize, 0);
    } else {
      // No cuBLASLt algorithm (unusual shapes/alignment): the plain kernel,
      // with bias and activation moved to the elementwise epilogue.
      k->naive_ = true;
      k->ws_ = 0;
      gpu::GemmArgs& g = k->gemm_;
      g.M = M;
      g.N = N;
      g.K = K;
      g.batch = batch;
      g.ta = ta;
      g.tb = tb;
      g.lda = ta ? M : K;
      g.ldb = tb ? K : N;
      g.ldc = N;
      g.stride_a = stride_a;
      g.stride_b = stride_b;
      g.stride_c = M * N;
      g.alpha = k->alpha_;
      g.beta = k->beta_;
      if (bias_in >= 0) addend_in = bias_in;
      k->bias_input_ = -1;
      k->epi_ = Epilogue{};
      if (addend_in >= 0 || residual_in >= 0 || act != gpu::kEwCopy)
        TSR_TRY(BuildEpilogue(a, addend_in, is_gemm ? beta : 1.f, residual_in, act, p1, p2, &k->epi_));
    }
  }
  *out = std::move(k);
  return Err::Ok();
}

// ---- convolution -----------------------------------------------------------------------------

class ConvKernel final : public GpuKernel {
 public:
  ~ConvKernel() override {
    if (xd_) cudnnDestroyTensorDescriptor(xd_);
    if (yd_) cudnnDestroyTensorDescriptor(yd_);
    if (wd_) cudnnDestroyFilterDescriptor(wd_);
    if (cd_) cudnnDestroyConvolutionDescriptor(cd_);
  }
  uint64_t workspace_bytes() const override { return ws_; }
  Err Run(const LaunchCtx& c, const void* const* in, void* const* out) const override {
    const float one = 1.f, zero = 0.f;
    void* y = out[0];
    const void* z = residual_ >= 0 ? in[residual_] : nullptr;
    if (z && z != y)
      TSR_TRY(LaunchErr(cudaMemcpyAsync(y, z, y_bytes_, cudaMemcpyDeviceToDevice, c.stream), who_, "residual copy"));
    TSR_TRY(DnnErr(cudnnConvolutionForward(c.dnn, &one, xd_, in[0], wd_, in[1], cd_, algo_, c.workspace, ws_,
                                           z ? &one : &zero, yd_, y),
                   who_, "cudnnConvolutionForward"));
    if (bias_ >= 0 || act_ != gpu::kEwCopy) {
      // y = act(y + bias[channel]) in one pass; bias over [N, M, spatial] with strides (0, 1, 0).
      const void* ins[gpu::kMaxEwInputs] = {y, bias_ >= 0 ? in[bias_] : nullptr};
      TSR_TRY(LaunchErr(LaunchEwProgram(dtype_, epi_, ins, y, numel_, c.stream), who_, "bias/activation"));
    }
    return Err::Ok();
  }

  std::string who_;
  int32_t dtype_ = TSR_DTYPE_F32;
  int64_t numel_ = 0;
  size_t y_bytes_ = 0;
  cudnnTensorDescriptor_t xd_ = nullptr, yd_ = nullptr;
  cudnnFilterDescriptor_t wd_ = nullptr;
  cudnnConvolutionDescriptor_t cd_ = nullptr;
  cudnnConvolutionFwdAlgo_t algo_ = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  uint64_t ws_ = 0;
  int bias_ = -1, residual_ = -1;
  int32_t act_ = gpu::kEwCopy;
  float p1_ = 0, p2_ = 0;
  gpu::EwProgram epi_;  // act(y + bias)
};

Err SetTensor(cudnnTensorDescriptor_t* d, int32_t dt, const std::vector<int>& dims, const std::string& who) {
  TSR_TRY(DnnErr(cudnnCreateTensorDescriptor(d), who, "cudnnCreateTensorDescriptor"));
  std::vector<int> st(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * dims[i + 1];
  return DnnErr(cudnnSetTensorNdDescriptor(*d, DnnType(dt), static_cast<int>(dims.size()), dims.data(), st.data()), who,
                "cudnnSetTensorNdDescriptor");
}

// Symmetric per-axis padding from pads/auto_pad; error when asymmetric.
Err ConvPads(const NodeArgs& a, const std::vector<int64_t>& in_sp, const std::vector<int64_t>& out_sp,
             const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
             const std::vector<int64_t>& dil, std::vector<int>* pads) {
  NodeAttrs at = a.attrs();
  const size_t s = in_sp.size();
  const std::string ap = at.String("auto_pad", "NOTSET");
  std::vector<int64_t> p = at.Ints("pads");
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    p.assign(2 * s, 0);
    for (size_t i = 0; i < s; ++i) {
      const int64_t need = std::max<int64_t>(0, (out_sp[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - in_sp[i]);
      p[i] = ap == "SAME_UPPER" ? need / 2 : need - need / 2;
      p[s + i] = need - p[i];
    }
  } else if (ap == "VALID" || p.empty()) {
    p.assign(2 * s, 0);
  }
  if (p.size() != 2 * s) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: pads must have %zu entries", a.Describe().c_str(), 2 * s);
  pads->clear();
  for (size_t i = 0; i < s; ++i) {
    if (p[i] != p[s + i])
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: asymmetric padding (%lld, %lld) is not supported by cuDNN on this backend",
                     a.Describe().c_str(), static_cast<long long>(p[i]), static_cast<long long>(p[s + i]));
    pads->push_back(static_cast<int>(p[i]));
  }
  return Err::Ok();
}

std::vector<int> ToInt(const std::vector<int64_t>& v) { return std::vector<int>(v.begin(), v.end()); }

// 1-D tensors [N,C,L] become [N,C,1,L] (and kernels [M,C,1,k]).
std::vector<int64_t> As2D(const std::vector<int64_t>& d) {
  if (d.size() != 3) return d;
  return {d[0], d[1], 1, d[2]};
}

Err CreateConv(const NodeArgs& a, std::unique_ptr<GpuKernel>* out) {
  if (a.inputs.size() < 2 || !a.inputs[0] || !a.inputs[1] || !a.has_output(0))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: needs X, W and an output", a.Describe().c_str());
  const TensorArg &X = *a.inputs[0], &W = *a.inputs[1], &Y = *a.outputs[0];
  const int32_t dt = X.dtype;
  if (!IsFloat(dt) || W.dtype != dt || Y.dtype != dt)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: X, W, Y must share one of f32/f16/bf16", a.Describe().c_str());
  if ((X.dims.size() != 3 && X.dims.size() != 4) || W.dims.size() != X.dims.size() || Y.dims.size() != X.dims.size())
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: only 1-D and 2-D convolutions are supported on CUDA", a.Describe().c_str());
  NodeAttrs at = a.attrs();
  const size_t s = X.dims.size() - 2;
  std::vector<int64_t> kernel(W.dims.begin() + 2, W.dims.end());
  std::vector<int64_t> strides = at.Ints("strides", std::vector<int64_t>(s, 1));
  std::vector<int64_t> dil = at.Ints("dilations", std::vector<int64_t>(s, 1));
  if (strides.size() != s || dil.size() != s)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: strides/dilations must have %zu entries", a.Describe().c_str(), s);
  const int64_t group = at.Int("group", 1);
  if (group < 1 || X.dims[1] != W.dims[1] * group || W.dims[0] % group != 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: channels (%lld) do not match W (%lld x group %lld)",
                   a.Describe().c_str(), static_cast<long long>(X.dims[1]), static_cast<long long>(W.dims[1]),
                   static_cast<long long>(group));
  std::vector<int> pads;
  TSR_TRY(ConvPads(a, {X.dims.begin() + 2, X.dims.end()}, {Y.dims.begin() + 2, Y.dims.end()}, kernel, strides, dil,
                   &pads));
  if (s == 1) {
    pads.insert(pads.begin(), 0);
    strides.insert(strides.begin(), 1);
    dil.insert(dil.begin(), 1);
  }
  auto k = std::make_unique<ConvKernel>();
  k->who_ = a.Describe();
  k->dtype_ = dt;
  k->numel_ = Y.numel;
  k->y_bytes_ = static_cast<size_t>(Y.nbytes());
  const bool fused = std::string(a.node->domain) == "tessera";
  if (fused) TSR_TRY(ParseActivation(a, &k->act_, &k->p1_, &k->p2_));
  const std::vector<int64_t> x4 = As2D(X.dims), w4 = As2D(W.dims), y4 = As2D(Y.dims);
  TSR_TRY(SetTensor(&k->xd_, dt, ToInt(x4), k->who_));
  TSR_TRY(SetTensor(&k->yd_, dt, ToInt(y4), k->who_));
  TSR_TRY(DnnErr(cudnnCreateFilterDescriptor(&k->wd_), k->who_, "cudnnCreateFilterDescriptor"));
  const std::vector<int> wi = ToInt(w4);
  TSR_TRY(DnnErr(cudnnSetFilterNdDescriptor(k->wd_, DnnType(dt), CUDNN_TENSOR_NCHW, 4, wi.data()), k->who_,
                 "cudnnSetFilterNdDescriptor"));
  TSR_TRY(DnnErr(cudnnCreateConvolutionDescriptor(&k->cd_), k->who_, "cudnnCreateConvolutionDescriptor"));
  const std::vector<int> si = ToInt(strides), di = ToInt(dil);
  TSR_TRY(DnnErr(cudnnSetConvolutionNdDescriptor(k->cd_, 2, pads.data(), si.data(), di.data(), CUDNN_CROSS_CORRELATION,
                                                 CUDNN_DATA_FLOAT),
                 k->who_, "cudnnSetConvolutionNdDescriptor"));
  TSR_TRY(DnnErr(cudnnSetConvolutionGroupCount(k->cd_, static_cast<int>(group)), k->who_, "group count"));
  // f32 without tf32: FMA math (CUDNN_DEFAULT_MATH would allow TF32 on Ampere+).
  const cudnnMathType_t mt = dt != TSR_DTYPE_F32 ? CUDNN_TENSOR_OP_MATH : a.options.f32_math != F32Math::kExact ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  TSR_TRY(DnnErr(cudnnSetConvolutionMathType(k->cd_, mt), k->who_, "math type"));
  int od[4] = {0, 0, 0, 0};
  TSR_TRY(DnnErr(cudnnGetConvolutionNdForwardOutputDim(k->cd_, k->xd_, k->wd_, 4, od), k->who_, "output dims"));
  for (int i = 0; i < 4; ++i)
    if (od[i] != y4[i])
      return MakeErr(TSR_ERR_UNSUPPORTED, "%s: cuDNN computes output dim %d = %d, the graph says %lld (ceil/asymmetric pads?)",
                     k->who_.c_str(), i, od[i], static_cast<long long>(y4[i]));
  if (a.has_input(2)) {
    if (a.inputs[2]->numel != W.dims[0] || a.inputs[2]->dtype != dt)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: B must have M=%lld elements of X's dtype", k->who_.c_str(),
                     static_cast<long long>(W.dims[0]));
    k->bias_ = 2;
  }
  {
    gpu::EwProgram& p = k->epi_;
    p.rank = 3;
    p.dims[0] = Y.dims[0];
    p.dims[1] = Y.dims[1];
    p.dims[2] = Prod(Y.dims, 2, Y.dims.size());
    p.flat[0] = 1;
    p.strides[1][1] = 1;  // bias: one value per channel
    p.num_inputs = k->bias_ >= 0 ? 2 : 1;
    int n = 0, cur = 0;
    if (k->bias_ >= 0) {
      p.op[n] = gpu::kEwAdd; p.a[n] = 0; p.b[n] = 1;
      cur = p.num_inputs + n++;
    }
    p.op[n] = k->act_; p.a[n] = static_cast<int16_t>(cur); p.b[n] = -1; p.p1[n] = k->p1_; p.p2[n] = k->p2_;
    p.num_instr = n + 1;
  }
  if (fused && at.Int("has_residual", 0) && a.has_input(3)) {
    if (a.inputs[3]->dims != Y.dims || a.inputs[3]->dtype != dt)
      return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: residual must have Y's shape and dtype", k->who_.c_str());
    k->residual_ = 3;
  }
  if (a.dnn) {
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int found = 0;
    TSR_TRY(DnnErr(cudnnGetConvolutionForwardAlgorithm_v7(a.dnn, k->xd_, k->wd_, k->cd_, k->yd_, 8, &found, perf),
                   k->who_, "cudnnGetConvolutionForwardAlgorithm_v7"));
    bool ok = false;
    for (int i = 0; i < found && !ok; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kConvWorkspaceMax) continue;
      k->algo_ = perf[i].algo;
      k->ws_ = perf[i].memory;
      ok = true;
    }
    if (!ok) return MakeErr(TSR_ERR_UNSUPPORTED, "%s: cuDNN offers no algorithm for this convolution", k->who_.c_str());
    size_t ws = 0;
    TSR_TRY(DnnErr(cudnnGetConvolutionForwardWorkspaceSize(a.dnn, k->xd_, k->wd_, k->cd_, k->yd_, k->algo_, &ws),
                   k->who_, "workspace size"));
    k->ws_ = std::max<uint64_t>(k->ws_, ws);
  }
  *out = std::move(k);
  return Err::Ok();
}

}  // namespace

void AppendLibraryKernels(std::vector<KernelTableEntry>& t) {
  for (const char* op : {"MatMul", "Gemm", "tessera.FusedMatMul", "tessera.FusedGemm"}) t.push_back({op, &CreateGemmLike});
  t.push_back({"Conv", &CreateConv});
  t.push_back({"tessera.FusedConv", &CreateConv});
}

}  // namespace tessera::cuda

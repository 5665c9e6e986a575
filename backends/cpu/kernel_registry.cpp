#include <cstring>

#include "backends/cpu/kernel.h"

namespace tessera::cpu {

const KernelRegistry& KernelRegistry::Get() {
  static const KernelRegistry* reg = [] {
    auto* r = new KernelRegistry();
    RegisterMathKernels(*r);
    RegisterLossNormKernels(*r);
    RegisterIndexingKernels(*r);
    RegisterResizeKernels(*r);
    RegisterQuantKernels(*r);
    RegisterOnnxAttentionKernels(*r);
    RegisterRnnKernels(*r);
    RegisterSignalKernels(*r);
    RegisterTrainingKernels(*r);
    RegisterElementwiseKernels(*r);
    RegisterReductionKernels(*r);
    RegisterTensorKernels(*r);
    RegisterDnnlKernels(*r);
    RegisterPoolConvLoopKernels(*r);
    RegisterLayoutKernels(*r);
    RegisterFusedDnnlKernels(*r);
    RegisterAttentionKernels(*r);
    RegisterFusedElementwiseKernels(*r);
    return r;
  }();
  return *reg;
}

const KernelEntry* KernelRegistry::Find(const char* domain, const char* op) const {
  const char* d = domain ? domain : "";
  if (std::strcmp(d, "ai.onnx") == 0) d = "";
  for (const auto& e : entries_)
    if (std::strcmp(e.domain, d) == 0 && std::strcmp(e.op, op) == 0) return &e;
  return nullptr;
}

}  // namespace tessera::cpu

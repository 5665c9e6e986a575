// CPU kernels: ONNX Attention and RotaryEmbedding.
#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterOnnxAttentionKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

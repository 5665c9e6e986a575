// CPU kernels: losses, normalizations, Hardmax/CumSum/TopK-style reductions.
#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterLossNormKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

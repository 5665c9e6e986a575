#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterElementwiseKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

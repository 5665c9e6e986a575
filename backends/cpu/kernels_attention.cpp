// Placeholder: no kernels yet.
#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterAttentionKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

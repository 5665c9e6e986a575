// CPU kernels: scatter/gather/one-hot/space-depth/data-dependent indexing ops.
#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterIndexingKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

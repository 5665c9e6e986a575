#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterDnnlKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

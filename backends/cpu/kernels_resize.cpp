// CPU kernels: Resize/Upsample/GridSample/AffineGrid.
#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterResizeKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

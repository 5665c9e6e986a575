// CPU kernels: DFT/STFT, window functions, MelWeightMatrix.
#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterSignalKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

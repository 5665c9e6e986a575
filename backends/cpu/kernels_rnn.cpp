// CPU kernels: RNN/GRU/LSTM.
#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterRnnKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

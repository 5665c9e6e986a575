// Schemas of the tessera-domain fused ops the compiler's fusion passes create.
// One registration helper per pass family (graph/ops_fused_*.cpp).
#include "graph/op_schema.h"

namespace tessera {

void RegisterFusedConvGemmOps(OpRegistry& r);      // ops_fused_conv_gemm.cpp
void RegisterFusedElementwiseOps(OpRegistry& r);   // ops_fused_elementwise.cpp
void RegisterFusedNormOps(OpRegistry& r);          // ops_fused_norm.cpp (tessera.Gelu, ...)
void RegisterLayoutOps(OpRegistry& r);             // ops_layout.cpp (tessera.LayoutConvert)

void RegisterFusedOps(OpRegistry& r) {
  RegisterFusedConvGemmOps(r);
  RegisterFusedElementwiseOps(r);
  RegisterFusedNormOps(r);
  RegisterLayoutOps(r);
}

}  // namespace tessera

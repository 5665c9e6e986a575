// Placeholder: no schemas yet.
#include "graph/op_schema.h"

namespace tessera {

void RegisterFusedConvGemmOps(OpRegistry& r) { (void)r; }

}  // namespace tessera

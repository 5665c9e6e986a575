// Placeholder: no schemas yet.
#include "graph/op_schema.h"

namespace tessera {

void RegisterFusedNormOps(OpRegistry& r) { (void)r; }

}  // namespace tessera

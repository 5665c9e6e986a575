// placeholder, replaced by the plugin implementation
#include "tessera/backend.h"
extern "C" TSR_BACKEND_EXPORT const tsr_backend_api* tsr_backend_entry(uint32_t) { return nullptr; }

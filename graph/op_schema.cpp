// placeholder until the schema registry lands
#include "graph/op_schema.h"

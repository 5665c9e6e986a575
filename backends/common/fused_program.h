// tessera.FusedElementwise's attributes as the CPU and OpenCL plugins read
// them: `program` (ints, instructions of `instr_width` ints each) and
// `constants` (floats, optional). Header-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/common/plugin_util.h"
#include "tessera/backend.h"

namespace tessera::plugin {

// Reads and checks the attributes' types and the program's length; `who` names
// the node in errors ("node 'f' (FusedElementwise)").
inline Err ReadFusedProgram(const NodeAttrs& at, const std::string& who, int instr_width, std::vector<int64_t>* prog,
                            std::vector<float>* consts) {
  const tsr_attr_view* pa = at.Find("program");
  if (!pa || pa->type != TSR_ATTR_INTS)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'program' (ints) is required", who.c_str());
  *prog = at.Ints("program");
  const tsr_attr_view* ca = at.Find("constants");
  if (ca && ca->type != TSR_ATTR_FLOATS)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: attribute 'constants' must be floats", who.c_str());
  *consts = at.Floats("constants");
  if (prog->empty() || prog->size() % instr_width != 0)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: 'program' must hold a non-empty multiple of %d ints, got %zu",
                   who.c_str(), instr_width, prog->size());
  return Err::Ok();
}

}  // namespace tessera::plugin

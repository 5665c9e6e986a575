// safetensors files (the Hugging Face format): an 8-byte little-endian header
// length N, N bytes of JSON ({"name": {"dtype": "F32", "shape": [..],
// "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "text"}}), then
// the raw little-endian tensor bytes, offsets relative to the end of the
// header. Used for training checkpoints (runtime/training_session.h).
//
// Writing is atomic: a temporary file in the same folder is renamed over
// `path`. Reading validates everything (header length against the file size,
// JSON shape, dtype names, offsets in range, ordered and non-overlapping,
// byte counts equal to dtype size x element count) and reports a malformed
// file as InvalidArgument naming the file and the tensor.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "graph/status.h"
#include "graph/tensor.h"

namespace tessera {

struct SafetensorsContents {
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order
  // The tensor named `name`, or nullptr.
  const Tensor* Find(const std::string& name) const;
};

// Dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL (others are InvalidArgument).
// Names must be unique and non-empty; "__metadata__" is reserved.
Status WriteSafetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                        const std::map<std::string, std::string>& metadata = {});
Result<SafetensorsContents> ReadSafetensors(const std::string& path);

}  // namespace tessera

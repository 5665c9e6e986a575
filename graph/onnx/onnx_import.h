// ONNX model import: ModelProto (file or bytes) -> Graph.
//
// The importer checks the model's structure (opsets, initializers, external
// data, every referenced name) and records the types that the file declares
// (graph inputs/outputs, value_info). It does not run shape inference; the
// compiler does that. The result is topologically sorted and verified.
// Protobuf types never appear in this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/status.h"
#include "graph/tensor.h"

namespace tessera {

struct ImportOptions {
  // Any single initializer/tensor (constant or attribute) above this many
  // bytes is rejected with OutOfMemory.
  int64_t max_tensor_bytes = int64_t{16} << 30;
  // When set, external-data tensors are resolved by this instead of reading
  // files (used by the .tplan loader). `location`, `offset` and `length` are
  // the TensorProto's external_data entries (offset defaults to 0, length to
  // the tensor's byte size). The returned tensor must have `dtype` and `dims`.
  std::function<Result<Tensor>(const std::string& location, int64_t offset, int64_t length, DType dtype,
                               const std::vector<int64_t>& dims)>
      external_resolver;
};

// Reads and imports the model at `path`. External data resolves relative to
// the file's folder. Errors: NotFound (no such file), InvalidArgument (not a
// valid model, bad names, bad external data), Unsupported (opset, sparse or
// sequence types), OutOfRange (bad dims), OutOfMemory (tensor over the cap).
Result<std::unique_ptr<Graph>> ImportOnnxFile(const std::string& path, const ImportOptions& opts = {});

// Imports a serialized ModelProto held in memory (`data` is only read during
// the call). External data resolves relative to `model_dir`; with an empty
// `model_dir` external data is rejected unless opts.external_resolver is set.
Result<std::unique_ptr<Graph>> ImportOnnxBytes(const void* data, size_t size, const std::string& model_dir,
                                               const ImportOptions& opts = {});

}  // namespace tessera

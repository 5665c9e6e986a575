// ONNX model export: Graph -> serialized ModelProto. The inverse of the
// importer: import(export(g)) has the same nodes, attributes, declared types
// and constants. Protobuf types never appear in this header.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "graph/graph.h"
#include "graph/status.h"
#include "graph/tensor.h"

namespace tessera {

struct ExportOptions {
  // When set, each (non-string) constant is written as external data: the
  // sink stores the bytes and returns (location, offset, length) to record in
  // the TensorProto. Otherwise constants go in raw_data. An error from the
  // sink aborts the export and is returned.
  std::function<Status(const Value& v, const Tensor& t, std::string* location, int64_t* offset,
                       int64_t* length)>
      constant_sink;
  int64_t ir_version = 8;
};

// Serialized ModelProto. Fails with OutOfRange when the model would exceed
// protobuf's 2 GiB limit (use constant_sink), Internal on malformed IR
// (e.g. an attribute without a type).
Result<std::string> ExportOnnx(const Graph& g, const ExportOptions& opts = {});
// ExportOnnx, then writes the bytes to `path` (IoError naming the path).
Status ExportOnnxFile(const Graph& g, const std::string& path, const ExportOptions& opts = {});

}  // namespace tessera

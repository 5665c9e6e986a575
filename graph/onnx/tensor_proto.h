// Single ONNX TensorProto messages: the test-data files of the ONNX test
// suite (input_0.pb, output_0.pb, ...). Protobuf types never appear here.
#pragma once

#include <cstddef>
#include <string>

#include "graph/status.h"
#include "graph/tensor.h"

namespace tessera {

// Reads a serialized TensorProto. External data (if any) resolves relative to
// the file's folder. `out_name` (optional) receives the TensorProto's name.
// Errors: NotFound (no such file), InvalidArgument (not a TensorProto, data
// size mismatch), Unsupported (dtype), OutOfRange (bad dims).
Result<Tensor> LoadTensorProtoFile(const std::string& path, std::string* out_name = nullptr);
// Writes `t` as a TensorProto with raw_data (string tensors: string_data).
Status SaveTensorProtoFile(const std::string& path, const Tensor& t, const std::string& name);
// Parses a serialized TensorProto held in memory; external data resolves
// relative to `model_dir` (empty: external data is rejected).
Result<Tensor> TensorFromProtoBytes(const void* data, size_t size, const std::string& model_dir,
                                    std::string* out_name);

}  // namespace tessera

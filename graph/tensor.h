// Tensor: a host-memory n-d array used for constants (initializers), test
// data and constant folding. Storage is shared and immutable once built:
// copies of a Tensor share bytes. Data may be owned (heap, 64-byte aligned) or
// borrowed from a memory-mapped file kept alive by `keepalive`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/dtype.h"
#include "graph/shape.h"
#include "graph/status.h"

namespace tessera {

class Tensor {
 public:
  Tensor() = default;

  // Zero-filled owned tensor. Fails on negative dims, overflow, or string dtype.
  static Result<Tensor> Zeros(DType dtype, std::vector<int64_t> dims);
  // Owned copy of `nbytes` bytes from `data` (must equal the tensor's byte size).
  static Result<Tensor> FromBytes(DType dtype, std::vector<int64_t> dims, const void* data, size_t nbytes);
  // Borrowed view of memory that `keepalive` keeps valid (e.g. an mmap).
  static Tensor Borrow(DType dtype, std::vector<int64_t> dims, const void* data, size_t nbytes,
                       std::shared_ptr<const void> keepalive);
  static Tensor Strings(std::vector<int64_t> dims, std::vector<std::string> values);
  template <typename T>
  static Tensor FromVector(DType dtype, std::vector<int64_t> dims, const std::vector<T>& v) {
    return FromBytes(dtype, std::move(dims), v.data(), v.size() * sizeof(T)).value();
  }
  static Tensor ScalarI64(int64_t v) { return FromVector<int64_t>(DType::kI64, {}, {v}); }
  static Tensor ScalarF32(float v) { return FromVector<float>(DType::kF32, {}, {v}); }

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t num_elements() const;
  size_t nbytes() const { return nbytes_; }
  const void* raw() const { return data_; }
  template <typename T>
  const T* data() const { return static_cast<const T*>(data_); }
  // Writable pointer; only valid for tensors created by Zeros/FromBytes before sharing.
  void* mutable_raw() { return const_cast<void*>(data_); }
  const std::vector<std::string>& strings() const { return strings_; }
  TensorType type() const { return TensorType{dtype_, Shape::FromInts(dims_)}; }

  // Element i converted to double / int64 (any numeric dtype); for folding and tests.
  double GetAsDouble(int64_t i) const;
  int64_t GetAsInt64(int64_t i) const;
  // All elements as int64 (integer dtypes only; used for shape-like inputs).
  Result<std::vector<int64_t>> ToInt64Vector() const;

 private:
  DType dtype_ = DType::kUndefined;
  std::vector<int64_t> dims_;
  std::shared_ptr<const void> storage_;
  const void* data_ = nullptr;
  size_t nbytes_ = 0;
  std::vector<std::string> strings_;
};

}  // namespace tessera

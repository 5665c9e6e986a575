// Shapes whose dims are known integers or named symbols ("batch", "seq"),
// and TensorType = dtype + shape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "graph/dtype.h"
#include "graph/status.h"

namespace tessera {

struct Dim {
  int64_t value = -1;   // >= 0 when known
  std::string symbol;   // name when symbolic; empty + value<0 = unknown, unnamed

  static Dim Known(int64_t v) { return Dim{v, {}}; }
  static Dim Symbol(std::string s) { return Dim{-1, std::move(s)}; }
  static Dim Unknown() { return Dim{}; }
  bool is_known() const { return value >= 0; }
  bool operator==(const Dim& o) const { return value == o.value && symbol == o.symbol; }
  bool operator!=(const Dim& o) const { return !(*this == o); }
  std::string ToString() const;  // "7", "batch" or "?"
};

class Shape {
 public:
  Shape() = default;  // rank 0 (a scalar)
  explicit Shape(std::vector<Dim> dims) : dims_(std::move(dims)) {}
  static Shape FromInts(const std::vector<int64_t>& dims);
  static Shape UnknownRank();

  bool has_rank() const { return !unknown_rank_; }
  int rank() const { return static_cast<int>(dims_.size()); }
  const Dim& dim(int i) const { return dims_[i]; }
  Dim& dim(int i) { return dims_[i]; }
  const std::vector<Dim>& dims() const { return dims_; }
  std::vector<Dim>& dims() { return dims_; }
  // True when the rank and every dim are known integers.
  bool is_static() const;
  // Known dims as integers; nullopt if not static.
  std::optional<std::vector<int64_t>> AsInts() const;
  // Number of elements; error if not static or if the product overflows int64.
  Result<int64_t> NumElements() const;
  std::string ToString() const;  // "[1,3,batch,?]" or "[*]" for unknown rank
  bool operator==(const Shape& o) const { return unknown_rank_ == o.unknown_rank_ && dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return !(*this == o); }

 private:
  std::vector<Dim> dims_;
  bool unknown_rank_ = false;
};

struct TensorType {
  DType dtype = DType::kUndefined;
  Shape shape = Shape::UnknownRank();
  std::string ToString() const;  // "f32[1,3,224,224]"
  bool operator==(const TensorType& o) const { return dtype == o.dtype && shape == o.shape; }
};

// Product of dims with overflow checking; error names what overflowed.
Result<int64_t> CheckedNumElements(const std::vector<int64_t>& dims);
// bytes = elements * element size, overflow checked.
Result<int64_t> CheckedByteSize(const std::vector<int64_t>& dims, DType dtype);

}  // namespace tessera

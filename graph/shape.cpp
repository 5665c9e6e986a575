#include "graph/shape.h"

#include <limits>

namespace tessera {

std::string Dim::ToString() const {
  if (is_known()) return std::to_string(value);
  if (!symbol.empty()) return symbol;
  return "?";
}

Shape Shape::FromInts(const std::vector<int64_t>& dims) {
  Shape s;
  for (int64_t d : dims) s.dims_.push_back(Dim::Known(d));
  return s;
}

Shape Shape::UnknownRank() {
  Shape s;
  s.unknown_rank_ = true;
  return s;
}

bool Shape::is_static() const {
  if (unknown_rank_) return false;
  for (const auto& d : dims_)
    if (!d.is_known()) return false;
  return true;
}

std::optional<std::vector<int64_t>> Shape::AsInts() const {
  if (!is_static()) return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(dims_.size());
  for (const auto& d : dims_) out.push_back(d.value);
  return out;
}

Result<int64_t> Shape::NumElements() const {
  auto ints = AsInts();
  if (!ints) return InvalidArgument("shape ", ToString(), " is not static");
  return CheckedNumElements(*ints);
}

std::string Shape::ToString() const {
  if (unknown_rank_) return "[*]";
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ",";
    s += dims_[i].ToString();
  }
  return s + "]";
}

std::string TensorType::ToString() const { return std::string(DTypeName(dtype)) + shape.ToString(); }

Result<int64_t> CheckedNumElements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return InvalidArgument("negative dim ", d, " in shape");
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      return OutOfRange("element count of shape overflows int64");
    n *= d;
  }
  return n;
}

Result<int64_t> CheckedByteSize(const std::vector<int64_t>& dims, DType dtype) {
  TSR_ASSIGN_OR_RETURN(int64_t n, CheckedNumElements(dims));
  int64_t es = static_cast<int64_t>(DTypeSize(dtype));
  if (es == 0) es = 1;
  if (n != 0 && n > std::numeric_limits<int64_t>::max() / es)
    return OutOfRange("byte size of tensor overflows int64");
  return n * es;
}

}  // namespace tessera

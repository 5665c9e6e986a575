#include "graph/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace tessera {
namespace {

std::shared_ptr<void> AlignedAlloc(size_t nbytes) {
  size_t sz = (nbytes + 63) / 64 * 64;
  if (sz == 0) sz = 64;
  void* p = std::aligned_alloc(64, sz);
  if (!p) return nullptr;
  std::memset(p, 0, sz);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

}  // namespace

Result<Tensor> Tensor::Zeros(DType dtype, std::vector<int64_t> dims) {
  if (dtype == DType::kString || dtype == DType::kUndefined)
    return InvalidArgument("cannot allocate a flat tensor of dtype ", DTypeName(dtype));
  TSR_ASSIGN_OR_RETURN(int64_t bytes, CheckedByteSize(dims, dtype));
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  auto mem = AlignedAlloc(static_cast<size_t>(bytes));
  if (!mem) return OutOfMemory("cannot allocate ", bytes, " bytes for a tensor");
  t.storage_ = mem;
  t.data_ = mem.get();
  t.nbytes_ = static_cast<size_t>(bytes);
  return t;
}

Result<Tensor> Tensor::FromBytes(DType dtype, std::vector<int64_t> dims, const void* data, size_t nbytes) {
  TSR_ASSIGN_OR_RETURN(Tensor t, Zeros(dtype, std::move(dims)));
  if (nbytes != t.nbytes_)
    return InvalidArgument("tensor data has ", nbytes, " bytes, shape ", Shape::FromInts(t.dims_).ToString(),
                           " of ", DTypeName(dtype), " needs ", t.nbytes_);
  if (nbytes) std::memcpy(t.mutable_raw(), data, nbytes);
  return t;
}

Tensor Tensor::Borrow(DType dtype, std::vector<int64_t> dims, const void* data, size_t nbytes,
                      std::shared_ptr<const void> keepalive) {
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.storage_ = std::move(keepalive);
  t.data_ = data;
  t.nbytes_ = nbytes;
  return t;
}

Tensor Tensor::Strings(std::vector<int64_t> dims, std::vector<std::string> values) {
  Tensor t;
  t.dtype_ = DType::kString;
  t.dims_ = std::move(dims);
  t.strings_ = std::move(values);
  return t;
}

int64_t Tensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

double Tensor::GetAsDouble(int64_t i) const {
  switch (dtype_) {
    case DType::kF32: return data<float>()[i];
    case DType::kF64: return data<double>()[i];
    case DType::kF16: return HalfToFloat(data<uint16_t>()[i]);
    case DType::kBF16: return BF16ToFloat(data<uint16_t>()[i]);
    case DType::kF8E4M3FN: case DType::kF8E4M3FNUZ: case DType::kF8E5M2: case DType::kF8E5M2FNUZ:
    case DType::kF4E2M1:
      return MiniFloatToFloat(dtype_, data<uint8_t>()[i]);
    case DType::kF8E8M0: return E8M0ToFloat(data<uint8_t>()[i]);
    default: return static_cast<double>(GetAsInt64(i));
  }
}

int64_t Tensor::GetAsInt64(int64_t i) const {
  switch (dtype_) {
    case DType::kI64: return data<int64_t>()[i];
    case DType::kI32: return data<int32_t>()[i];
    case DType::kI16: return data<int16_t>()[i];
    case DType::kI8: return data<int8_t>()[i];
    case DType::kU8: return data<uint8_t>()[i];
    case DType::kU16: return data<uint16_t>()[i];
    case DType::kU32: return data<uint32_t>()[i];
    case DType::kU64: return static_cast<int64_t>(data<uint64_t>()[i]);
    case DType::kBool: return data<uint8_t>()[i] ? 1 : 0;
    case DType::kI4: return data<int8_t>()[i];  // unpacked, sign-extended
    case DType::kU4: return data<uint8_t>()[i];
    case DType::kF32: case DType::kF64: case DType::kF16: case DType::kBF16: case DType::kF8E4M3FN:
    case DType::kF8E4M3FNUZ: case DType::kF8E5M2: case DType::kF8E5M2FNUZ: case DType::kF4E2M1:
    case DType::kF8E8M0: {
      const double d = GetAsDouble(i);  // truncates; NaN -> 0, out of range saturates
      if (std::isnan(d)) return 0;
      if (d >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
      if (d <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
      return static_cast<int64_t>(d);
    }
    default: return 0;
  }
}

Result<std::vector<int64_t>> Tensor::ToInt64Vector() const {
  if (!IsIntegerDType(dtype_))
    return InvalidArgument("expected an integer tensor, got ", DTypeName(dtype_));
  std::vector<int64_t> v(static_cast<size_t>(num_elements()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = GetAsInt64(static_cast<int64_t>(i));
  return v;
}

}  // namespace tessera

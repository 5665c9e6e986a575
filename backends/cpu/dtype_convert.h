// Element conversion through double for kernels that compute in one
// precision whatever the tensor's dtype (Resize, GridSample, the signal ops):
// LoadDoubles reads any numeric dtype; StoreDoubles writes floats rounded to
// nearest and integers rounded half to even and saturated.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "backends/common/plugin_util.h"
#include "tessera/backend.h"

namespace tessera::cpu {

inline bool IsNumericDT(int32_t dt) {
  switch (dt) {
    case TSR_DTYPE_F32: case TSR_DTYPE_F64: case TSR_DTYPE_F16: case TSR_DTYPE_BF16:
    case TSR_DTYPE_U8: case TSR_DTYPE_I8: case TSR_DTYPE_U16: case TSR_DTYPE_I16:
    case TSR_DTYPE_I32: case TSR_DTYPE_I64: case TSR_DTYPE_U32: case TSR_DTYPE_U64:
      return true;
    default:
      return false;
  }
}

inline bool IsFloatDT(int32_t dt) {
  return dt == TSR_DTYPE_F32 || dt == TSR_DTYPE_F64 || dt == TSR_DTYPE_F16 || dt == TSR_DTYPE_BF16;
}

template <typename T>
void LoadAs(const void* p, int64_t n, double* d) {
  const T* s = static_cast<const T*>(p);
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<double>(s[i]);
}

template <typename T>
void StoreInt(const double* s, int64_t n, void* p) {
  T* d = static_cast<T*>(p);
  const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
  const double hi = static_cast<double>(std::numeric_limits<T>::max());
  for (int64_t i = 0; i < n; ++i) {
    double v = std::nearbyint(s[i]);  // default rounding mode: half to even
    if (std::isnan(v)) v = 0;
    d[i] = v <= lo ? std::numeric_limits<T>::lowest() : v >= hi ? std::numeric_limits<T>::max() : static_cast<T>(v);
  }
}

// Converts n elements of dtype dt at p to doubles.
inline void LoadDoubles(int32_t dt, const void* p, int64_t n, double* d) {
  switch (dt) {
    case TSR_DTYPE_F32: LoadAs<float>(p, n, d); break;
    case TSR_DTYPE_F64: std::memcpy(d, p, static_cast<size_t>(n) * 8); break;
    case TSR_DTYPE_F16: {
      const uint16_t* s = static_cast<const uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) d[i] = plugin::HalfBitsToFloat(s[i]);
      break;
    }
    case TSR_DTYPE_BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) d[i] = plugin::BF16BitsToFloat(s[i]);
      break;
    }
    case TSR_DTYPE_U8: LoadAs<uint8_t>(p, n, d); break;
    case TSR_DTYPE_I8: LoadAs<int8_t>(p, n, d); break;
    case TSR_DTYPE_U16: LoadAs<uint16_t>(p, n, d); break;
    case TSR_DTYPE_I16: LoadAs<int16_t>(p, n, d); break;
    case TSR_DTYPE_I32: LoadAs<int32_t>(p, n, d); break;
    case TSR_DTYPE_I64: LoadAs<int64_t>(p, n, d); break;
    case TSR_DTYPE_U32: LoadAs<uint32_t>(p, n, d); break;
    case TSR_DTYPE_U64: LoadAs<uint64_t>(p, n, d); break;
    default: break;
  }
}

// Writes n doubles as dtype dt (floats rounded to nearest, integers rounded
// half-to-even and saturated).
inline void StoreDoubles(int32_t dt, const double* s, int64_t n, void* p) {
  switch (dt) {
    case TSR_DTYPE_F32: {
      float* d = static_cast<float*>(p);
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<float>(s[i]);
      break;
    }
    case TSR_DTYPE_F64: std::memcpy(p, s, static_cast<size_t>(n) * 8); break;
    case TSR_DTYPE_F16: {
      uint16_t* d = static_cast<uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) d[i] = plugin::FloatToHalfBits(static_cast<float>(s[i]));
      break;
    }
    case TSR_DTYPE_BF16: {
      uint16_t* d = static_cast<uint16_t*>(p);
      for (int64_t i = 0; i < n; ++i) d[i] = plugin::FloatToBF16Bits(static_cast<float>(s[i]));
      break;
    }
    case TSR_DTYPE_U8: StoreInt<uint8_t>(s, n, p); break;
    case TSR_DTYPE_I8: StoreInt<int8_t>(s, n, p); break;
    case TSR_DTYPE_U16: StoreInt<uint16_t>(s, n, p); break;
    case TSR_DTYPE_I16: StoreInt<int16_t>(s, n, p); break;
    case TSR_DTYPE_I32: StoreInt<int32_t>(s, n, p); break;
    case TSR_DTYPE_I64: StoreInt<int64_t>(s, n, p); break;
    case TSR_DTYPE_U32: StoreInt<uint32_t>(s, n, p); break;
    case TSR_DTYPE_U64: StoreInt<uint64_t>(s, n, p); break;
    default: break;
  }
}

}  // namespace tessera::cpu

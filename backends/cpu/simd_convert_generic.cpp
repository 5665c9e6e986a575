// Portable f32 <-> bf16 / f16 conversions (simd_convert.h) and their
// run-time ISA dispatch. The bf16 loops are branch-free so the compiler
// vectorizes them at the baseline ISA; the f16 ones call the scalar
// conversions of plugin_util.h (the AVX-512 table covers the fast path).
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backends/common/plugin_util.h"
#include "backends/cpu/simd_convert.h"

namespace tessera::cpu::simd {
namespace detail {
// Defined in simd_convert_avx512.cpp; null when that file was built without
// AVX-512 flags. Its code may run only when Avx512Supported().
const ConvertFns* Avx512ConvertTable();
}  // namespace detail

namespace {

void F32ToBf16G(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, x + i, 4);
    const uint32_t rounded = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (b >> 16) | 0x40u;
    y[i] = static_cast<uint16_t>((b & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
  }
}

void Bf16ToF32G(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t b = static_cast<uint32_t>(x[i]) << 16;
    std::memcpy(y + i, &b, 4);
  }
}

void F32ToF16G(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = plugin::FloatToHalfBits(x[i]);
}

void F16ToF32G(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = plugin::HalfBitsToFloat(x[i]);
}

const ConvertFns kGeneric = {&F32ToBf16G, &Bf16ToF32G, &F32ToF16G, &F16ToF32G};

const ConvertFns* TableFor(Isa isa) {
  if (isa == Isa::kAvx512) return Avx512Supported() ? detail::Avx512ConvertTable() : nullptr;
  return &kGeneric;
}

const ConvertFns* InitialTable() {
  const char* env = std::getenv("TESSERA_CPU_SIMD");
  if (env && std::strcmp(env, "generic") == 0) return &kGeneric;
  const ConvertFns* t = TableFor(Isa::kAvx512);
  return t ? t : &kGeneric;
}

std::atomic<const ConvertFns*>& Active() {
  static std::atomic<const ConvertFns*> a(InitialTable());
  return a;
}

}  // namespace

const ConvertFns& Converts() { return *Active().load(std::memory_order_relaxed); }
const ConvertFns& GenericConverts() { return kGeneric; }
const ConvertFns* Avx512Converts() { return TableFor(Isa::kAvx512); }

bool SetConvertIsaForTesting(Isa isa) {
  const ConvertFns* t = TableFor(isa);
  if (!t) return false;
  Active().store(t);
  return true;
}

}  // namespace tessera::cpu::simd

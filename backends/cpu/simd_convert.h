// Run-time dispatched bulk conversions between f32 and the 16-bit float
// storage types (bf16, f16), for Cast and every kernel that stages 16-bit
// data through f32.
//
// Results are bit-identical to the scalar conversions of
// backends/common/plugin_util.h on every input (both ISAs):
//   f32 -> bf16: plugin::FloatToBF16Bits (round to nearest even, denormals
//                rounded like any other value, NaN -> (bits >> 16) | 0x40)
//   bf16 -> f32: plugin::BF16BitsToFloat (exact, NaN payload kept)
//   f32 -> f16:  plugin::FloatToHalfBits (round to nearest even, f16
//                subnormals, overflow -> inf, NaN -> sign | 0x7e00)
//   f16 -> f32:  plugin::HalfBitsToFloat (exact, NaN payload kept unquieted)
// (So the AVX-512 path does not use vcvtneps2bf16, which flushes f32
// denormals to zero, and fixes up NaN lanes of vcvtps2ph / vcvtph2ps.)
//
// Two implementations, chosen once like simd.h's row kernels: portable loops
// (simd_convert_generic.cpp) and AVX-512 (simd_convert_avx512.cpp, the only
// TU of this group compiled with -mavx512*), used when
// simd::Avx512Supported() and TESSERA_CPU_SIMD is not "generic".
//
// ODR rule (as simd.h): declarations and plain data only in this header.
//
// All functions: n >= 0 elements (0 is a no-op); x and y must not overlap.
#pragma once

#include <cstdint>

#include "backends/cpu/simd.h"

namespace tessera::cpu::simd {

struct ConvertFns {
  void (*f32_to_bf16)(const float* x, uint16_t* y, int64_t n);
  void (*bf16_to_f32)(const uint16_t* x, float* y, int64_t n);
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n);
  void (*f16_to_f32)(const uint16_t* x, float* y, int64_t n);
};

// The table of the active ISA (selected once on first use).
const ConvertFns& Converts();
// The tables themselves (tests compare them). Avx512Converts() is null when
// the CPU lacks AVX-512 (its code must never run there).
const ConvertFns& GenericConverts();
const ConvertFns* Avx512Converts();
// Forces the ISA of Converts() (tests); false and no change when `isa` is
// not supported here. Not meant to be called while kernels run.
bool SetConvertIsaForTesting(Isa isa);

}  // namespace tessera::cpu::simd

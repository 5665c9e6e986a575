// Element types. Numeric values follow ONNX TensorProto.DataType so that the
// importer, the plan file and the plugin ABI (tsr_dtype) share one numbering.
//
// Storage rule for the narrow types: every element occupies whole bytes in
// Tensors, arenas and across the plugin ABI.
//  - float8 types (f8e4m3fn, f8e4m3fnuz, f8e5m2, f8e5m2fnuz, f8e8m0) are one
//    byte holding the format's bit pattern.
//  - Sub-byte types (i4, u4, f4e2m1) are held UNPACKED, one element per byte:
//    i4 as an int8_t in [-8, 7] (sign-extended), u4 as a uint8_t in [0, 15],
//    f4e2m1 as its 4-bit pattern in the low nibble (high nibble zero).
//    Only the ONNX boundary (TensorProto read/write, import/export) packs them
//    two per byte, element 2k in the low nibble of byte k (PackNibbles /
//    UnpackNibbles below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera {

enum class DType : int32_t {
  kUndefined = 0,
  kF32 = 1,
  kU8 = 2,
  kI8 = 3,
  kU16 = 4,
  kI16 = 5,
  kI32 = 6,
  kI64 = 7,
  kString = 8,
  kBool = 9,
  kF16 = 10,
  kF64 = 11,
  kU32 = 12,
  kU64 = 13,
  kBF16 = 16,
  kF8E4M3FN = 17,    // 1 sign, 4 exponent (bias 7), 3 mantissa; no inf, NaN = S.1111.111
  kF8E4M3FNUZ = 18,  // bias 8; no inf, no -0, NaN = 0x80
  kF8E5M2 = 19,      // IEEE-like: bias 15, inf and NaN
  kF8E5M2FNUZ = 20,  // bias 16; no inf, no -0, NaN = 0x80
  kU4 = 21,          // unpacked, see above
  kI4 = 22,          // unpacked, see above
  kF4E2M1 = 23,      // unpacked; 1 sign, 2 exponent (bias 1), 1 mantissa; finite only (max 6)
  kF8E8M0 = 24,      // unsigned power of two 2^(e-127); 0xFF = NaN
};

// Bytes per element in Tessera's own (unpacked) storage: 1 for the float8
// and sub-byte types; 0 for kUndefined and kString (strings are not flat).
size_t DTypeSize(DType t);
// Short lowercase name: "f32", "bf16", "i64", "bool", ...
const char* DTypeName(DType t);
// Parses DTypeName() output or an ONNX name ("float", "int64"); kUndefined if unknown.
DType DTypeFromName(const std::string& name);
// True for values this build knows (a valid ONNX id that Tessera represents).
bool IsKnownDType(int32_t onnx_id);
bool IsFloatDType(DType t);    // f16, bf16, f32, f64
bool IsIntegerDType(DType t);  // signed and unsigned integers incl. i4/u4 (not bool)
// The float8 family: f8e4m3fn, f8e4m3fnuz, f8e5m2, f8e5m2fnuz, f8e8m0.
bool IsFloat8DType(DType t);
// Types ONNX packs two per byte (i4, u4, f4e2m1).
bool IsSubByteDType(DType t);
// Any floating-point type: IsFloatDType, the float8 family and f4e2m1.
// (IsFloatDType stays the set with native arithmetic.)
bool IsAnyFloatDType(DType t);

// IEEE half and bfloat16 conversions (round to nearest even).
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BF16ToFloat(uint16_t b);
uint16_t FloatToBF16(float f);
// Bulk forms of the two above (n >= 0 elements, no overlap): bit-identical to the scalar
// ones element by element, written to vectorize (weight conversion at
// compile time).
void FloatToBF16Array(const float* src, uint16_t* dst, int64_t n);
void FloatToHalfArray(const float* src, uint16_t* dst, int64_t n);

// The narrow float formats ("minifloats": the float8 family except e8m0, and
// f4e2m1). MiniFloatToFloat decodes a bit pattern (NaN for NaN codes).
// FloatToMiniFloat rounds to nearest even. saturate=true clamps finite
// overflow and +-inf to +-max (ONNX Cast saturate=1); saturate=false maps
// overflow to inf (e5m2) or NaN (the others). NaN maps to the format's NaN
// (sign kept where the format has signed NaNs). f4e2m1 has no inf/NaN: it
// always saturates and maps NaN to 0x8 (-0), as ONNX's reference does.
// `t` must be one of those formats (0 / NaN returned otherwise).
float MiniFloatToFloat(DType t, uint8_t bits);
uint8_t FloatToMiniFloat(DType t, float f, bool saturate);
// f8e8m0 (ONNX Cast opset 24): decode, and encode with round_mode "up"
// (any fraction rounds up), "down" (truncate) or "nearest". NaN/inf -> 0xFF;
// the sign is ignored; saturate keeps 2^127 from rounding up into NaN.
enum class E8M0Round { kUp, kDown, kNearest };
float E8M0ToFloat(uint8_t bits);
uint8_t FloatToE8M0(float f, bool saturate, E8M0Round mode);

// ONNX's packing of i4/u4/f4e2m1: n elements in (n+1)/2 bytes, element 2k in
// the low nibble of byte k. PackNibbles keeps the low 4 bits of each source
// byte; UnpackNibbles sign-extends for kI4 (else zero-extends).
size_t PackedByteSize(int64_t n);
void PackNibbles(const uint8_t* unpacked, int64_t n, uint8_t* packed);
void UnpackNibbles(const uint8_t* packed, int64_t n, DType t, uint8_t* unpacked);

}  // namespace tessera

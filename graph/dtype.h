// Element types. Numeric values follow ONNX TensorProto.DataType so that the
// importer, the plan file and the plugin ABI (tsr_dtype) share one numbering.
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
};

// Bytes per element; 0 for kUndefined and kString (strings are not flat).
size_t DTypeSize(DType t);
// Short lowercase name: "f32", "bf16", "i64", "bool", ...
const char* DTypeName(DType t);
// Parses DTypeName() output or an ONNX name ("float", "int64"); kUndefined if unknown.
DType DTypeFromName(const std::string& name);
// True for values this build knows (a valid ONNX id that Tessera represents).
bool IsKnownDType(int32_t onnx_id);
bool IsFloatDType(DType t);    // f16, bf16, f32, f64
bool IsIntegerDType(DType t);  // signed and unsigned integers (not bool)

// IEEE half and bfloat16 conversions (round to nearest even).
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BF16ToFloat(uint16_t b);
uint16_t FloatToBF16(float f);

}  // namespace tessera

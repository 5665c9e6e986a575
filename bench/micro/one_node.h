// A single CPU-backend kernel set up the way the backend's compile step sets it
// up (a tsr_node_view, static TensorArgs, constants' host data), created
// through the KernelRegistry and run on owned 64-byte aligned buffers. This is
// the microbenchmarks' path into the backend: no session, no plan, no arena
// bookkeeping, so the timings are the kernels' own.
//
// Inputs are filled with deterministic uniform values in [-1, 1) when added
// (constants must hold their data before Create(): factories prepack them).
// Not copyable or movable (the views point into it); inputs, outputs and
// attributes are fixed once Create() has been called.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"

namespace tessera::bench {

// bf16 bits of `x` (round to nearest even) and back.
uint16_t F32ToBf16(float x);
float Bf16ToF32(uint16_t b);

class OneNode {
 public:
  OneNode(std::string domain, std::string op, int64_t opset = 17);
  OneNode(const OneNode&) = delete;
  OneNode& operator=(const OneNode&) = delete;
  ~OneNode();

  // dtype: TSR_DTYPE_F32 or TSR_DTYPE_BF16 (filled from random floats) or any
  // other (zero-filled). `seed` picks the random stream.
  OneNode& AddInput(int32_t dtype, std::vector<int64_t> dims, bool is_const, uint32_t seed);
  OneNode& AddOutput(int32_t dtype, std::vector<int64_t> dims);
  OneNode& SetAttrInt(const std::string& name, int64_t v);
  OneNode& SetAttrFloat(const std::string& name, float v);
  OneNode& SetAttrInts(const std::string& name, std::vector<int64_t> v);
  OneNode& SetAttrStrings(const std::string& name, std::vector<std::string> v);

  // Builds the views and creates the kernel with the backend's compile
  // options (threads, precision "f32" | "bf16").
  cpu::Err Create(int threads, const std::string& precision = "f32");
  // Runs the created kernel once (fails when Create() did not succeed).
  cpu::Err Run() const;

  // Element i of input / output `which` as a float (f32 or bf16 tensors).
  float InputAt(size_t which, int64_t i) const;
  float OutputAt(size_t which, int64_t i) const;
  const std::vector<int64_t>& InputDims(size_t which) const;
  int64_t InputBytes(size_t which) const;
  int64_t OutputBytes(size_t which) const;
  std::string Describe() const;

 private:
  struct Slot;
  struct Attr;
  std::string domain_, op_, name_;
  int64_t opset_;
  std::vector<std::unique_ptr<Slot>> inputs_, outputs_;
  std::vector<std::unique_ptr<Attr>> attrs_;
  std::vector<int32_t> in_idx_, out_idx_;
  std::vector<tsr_attr_view> attr_views_;
  tsr_node_view node_{};
  cpu::NodeArgs args_;
  std::unique_ptr<cpu::Kernel> kernel_;
  std::vector<const void*> in_ptrs_;
  std::vector<void*> out_ptrs_;
};

}  // namespace tessera::bench

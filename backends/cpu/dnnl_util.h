// oneDNN plumbing for the CPU backend's kernels: the process-wide engine, a
// per-thread stream, per-thread scratch memory, and plain (row-major) memory
// descriptors. Only kernels_dnnl.cpp includes this (the core never sees dnnl).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace tessera::cpu::dnnl_util {

// The one CPU engine, created on first use and never destroyed (primitives
// created from it live in executables that may outlive static destructors).
inline const dnnl::engine& Engine() {
  static const dnnl::engine* e = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *e;
}

// An in-order stream for the calling thread. oneDNN's CPU streams with the
// OpenMP runtime execute synchronously on the calling thread.
inline dnnl::stream& ThreadStream() {
  thread_local dnnl::stream s(Engine());
  return s;
}

// A small number fixed per thread (0, 1, 2, ... in order of first call):
// kernels with per-slot state start looking for a free slot there, so
// concurrent threads tend to keep to their own slots.
inline int ThreadSlotHint() {
  static std::atomic<int> next{0};
  thread_local const int hint = next.fetch_add(1, std::memory_order_relaxed) & 0xffff;
  return hint;
}

// Per-thread growing scratch buffer, 64-byte aligned. The returned pointer is
// valid until the next call on the same thread; contents are undefined.
// Returns nullptr when the allocation fails.
inline uint8_t* ThreadScratch(size_t bytes) {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<uint8_t, Free> buf;
  thread_local size_t cap = 0;
  if (bytes > cap || !buf) {
    size_t want = ((std::max<size_t>(bytes, 4096) + 4095) / 4096) * 4096;
    buf.reset(static_cast<uint8_t*>(std::aligned_alloc(64, want)));
    cap = buf ? want : 0;
  }
  return buf.get();
}

// Row-major strides of `dims`.
inline dnnl::memory::dims PlainStrides(const dnnl::memory::dims& dims) {
  dnnl::memory::dims s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * std::max<int64_t>(dims[i + 1], 1);
  return s;
}

// f32 descriptor of a contiguous row-major tensor.
inline dnnl::memory::desc PlainDesc(const dnnl::memory::dims& dims) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, PlainStrides(dims));
}

// f32 descriptor whose layout oneDNN chooses (format_tag::any).
inline dnnl::memory::desc AnyDesc(const dnnl::memory::dims& dims) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, dnnl::memory::format_tag::any);
}

inline size_t AlignUp(size_t n, size_t a = 64) { return (n + a - 1) / a * a; }

}  // namespace tessera::cpu::dnnl_util

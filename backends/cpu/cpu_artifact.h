// CPU plugin artifacts: what `executable_serialize` writes and
// `compile_cached` reads (backend.h), so a loaded .tplan skips work that
// `compile` would redo.
//
// Content: one entry per node of the segment, in segment order, with the
// node's signature (op, attribute names, input/output dtypes and shapes,
// constant sizes: what the kernel was created from, without addresses) and the
// bytes its kernel exported through PreparedConstants (data it derived from
// constant inputs at creation, e.g. weights packed into the layout the kernel
// chose; empty when the kernel exports nothing). compile_cached checks every
// signature against the segment before using anything, then creates each
// kernel with its entry's bytes available through PreparedBlob(): a kernel
// that implements PreparedConstants adopts them (after checking their size)
// instead of deriving them again; other kernels are created as usual.
//
// Format (little-endian): "TSRCPUA1", u32 entry count, per entry: u32 name
// length, name, u64 signature, u64 blob length, blob; then a u64 checksum of
// all preceding bytes. A bad checksum or a truncated blob is corruption
// (TSR_ERR_INVALID_ARGUMENT); another magic or a signature mismatch means the
// artifact does not fit (TSR_ERR_FAILED_PRECONDITION: the host recompiles).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"

namespace tessera::cpu {

// Optional second interface of a Kernel whose creation derives data from its
// constant inputs. ExportPrepared returns those bytes (empty = none); the
// kernel's factory, when PreparedBlob() is non-null during its call, may adopt
// them instead of deriving them, and must ignore them when their size is not
// the size it would produce.
class PreparedConstants {
 public:
  virtual ~PreparedConstants() = default;
  virtual std::string ExportPrepared() const = 0;
};

// The prepared bytes for the node whose kernel is being created on this
// thread by compile_cached, or nullptr.
const std::string* PreparedBlob();

// Sets PreparedBlob() for the current thread for its lifetime.
class ScopedPreparedBlob {
 public:
  explicit ScopedPreparedBlob(const std::string* blob);
  ~ScopedPreparedBlob();
  ScopedPreparedBlob(const ScopedPreparedBlob&) = delete;
  ScopedPreparedBlob& operator=(const ScopedPreparedBlob&) = delete;

 private:
  const std::string* prev_;
};

struct ArtifactEntry {
  std::string node;
  uint64_t signature = 0;
  std::string prepared;
};

// Signature of node `n` of `g` (see the header comment).
uint64_t NodeSignature(const tsr_node_view& n, const tsr_graph_view& g);

std::string EncodeArtifact(const std::vector<ArtifactEntry>& entries);
Err DecodeArtifact(const void* data, uint64_t bytes, std::vector<ArtifactEntry>* out);

// Checks that `entries` describe exactly the nodes of `seg` (count, names,
// signatures); FAILED_PRECONDITION naming the first difference otherwise.
Err MatchArtifact(const std::vector<ArtifactEntry>& entries, const tsr_graph_view& seg);

}  // namespace tessera::cpu

// Host-only logic of the CUDA backend: option parsing, the memory-cap
// accounting of the caching allocator, claim rules, attention tiling and the
// geometry of broadcasts / transposes / reductions. Plain C++: no CUDA header
// is included here, so tests/unit/cuda tests all of it on a machine without a
// GPU (library tessera_cuda_host).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "backends/common/gpu_kernels/geometry.h"
#include "backends/common/plugin_util.h"
#include "tessera/backend.h"

namespace tessera::cuda {

using plugin::Err;
using plugin::MakeErr;

// ---- options ---------------------------------------------------------------------------
// Backend options (init) and compile options use the same keys:
//   tf32            "0"/"1"/"true"/"false"/"on"/"off": allow TF32 tensor cores for f32
//                   GEMMs and convolutions (default off: exact f32 like the CPU backend)
//   cuda_graphs     same booleans: capture static segments as CUDA graphs (default on)
//   memory_cap      bytes the device allocator may hold at once (buffers and
//                   executables' constants); 0 = no cap
//   max_alloc_bytes largest single buffer_alloc (the deployment config's
//                   per-allocation cap); 0 = no limit
//   Byte sizes as in the deployment config: an integer, or a number with a
//   unit B, KB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB or K/M/G/T (powers of 1024).
//   release_threshold bytes the stream-ordered pool keeps cached after a
//                   synchronize (default: unlimited, i.e. UINT64_MAX)
//   precision       f32 | bf16 | f16 (the session's; compile options): f32
//                   tensors keep their dtype, but GEMMs may compute with bf16 /
//                   f16 tensor cores (cuBLASLt FAST_16BF / FAST_16F) and
//                   convolutions with TF32
// Reduced-precision math for f32 tensors (GEMMs; convolutions use TF32 for
// any of them): from "tf32" and the session's "precision" (bf16 / f16).
enum class F32Math { kExact, kTf32, kBf16, kF16 };

struct CudaOptions {
  bool tf32 = false;
  F32Math f32_math = F32Math::kExact;  // kTf32 when tf32; precision=bf16/f16 wins
  bool cuda_graphs = true;
  uint64_t memory_cap = 0;
  uint64_t max_alloc_bytes = 0;
  uint64_t release_threshold = UINT64_MAX;
};

using plugin::FindOption;
// Parses "123", "64K", "1.5GiB", "512 MB" (see above). false when malformed.
bool ParseByteSize(const std::string& s, uint64_t* out);
bool ParseBool(const std::string& s, bool* out);
// Updates *opts with the keys present in `o` (others keep their value).
// Unknown keys are ignored (the host passes options meant for other backends).
Err ParseCudaOptions(const tsr_compile_options* o, CudaOptions* opts);

// ---- memory-cap accounting ------------------------------------------------------------
// Bookkeeping of the device allocator: bytes held, peak, and the cap. Reserve
// fails with TSR_ERR_OUT_OF_MEMORY (nothing reserved) when the request would
// exceed the cap; a failed device allocation calls Release to undo its
// reservation, so the device stays usable. Thread-safe.
class MemoryAccounting {
 public:
  explicit MemoryAccounting(uint64_t cap = 0) : cap_(cap) {}
  void set_cap(uint64_t cap) { cap_.store(cap); }
  uint64_t cap() const { return cap_.load(); }
  uint64_t used() const { return used_.load(); }
  uint64_t peak() const { return peak_.load(); }
  Err Reserve(uint64_t bytes, const char* who);
  void Release(uint64_t bytes);

 private:
  std::atomic<uint64_t> cap_;
  std::atomic<uint64_t> used_{0}, peak_{0};
  std::mutex mu_;
};

// ---- pinned staging -------------------------------------------------------------------
// Splits a host<->device copy of `bytes` into chunks of at most `chunk` bytes
// (the pinned staging block size): returns the chunk sizes in order.
std::vector<uint64_t> StagingChunks(uint64_t bytes, uint64_t chunk);

// ---- CUDA-graph cache policy -------------------------------------------------------------
// Per executable: which binding sets (the device pointers of one execute) run
// eagerly, which are captured, and which replay. A set runs eagerly the first
// time it is seen, is captured into a slot the second time, and replays from
// then on. With all slots taken, the least recently used slot is reused (the
// backend updates its graph in place with cudaGraphExecUpdate). Not
// thread-safe: the backend holds the executable's graph lock.
class GraphPolicy {
 public:
  enum Action { kEager, kCapture, kReplay };
  explicit GraphPolicy(size_t slots = 4) : slots_(slots) {}
  // kReplay / kCapture: *slot is the slot to launch / fill; for kCapture,
  // *reused is true when the slot held another binding set's graph.
  Action Decide(const std::vector<const void*>& key, size_t* slot, bool* reused);
  // The capture into `slot` failed: forget its key.
  void Invalidate(size_t slot);
  size_t num_slots() const { return slots_.size(); }

 private:
  struct Slot {
    std::vector<const void*> key;
    bool valid = false;
    uint64_t last_use = 0;
  };
  std::vector<Slot> slots_;
  std::vector<std::vector<const void*>> seen_;  // run once, eagerly; most recent last
  uint64_t clock_ = 0;
};

// ---- claim ---------------------------------------------------------------------------
// "" when the CUDA backend can run `node` of `graph` (op, dtypes, attributes;
// shapes may be symbolic), else the reason. Pure host logic: callable without
// a device. Shape-dependent limits that only compile can check (e.g. a
// convolution cuDNN rejects) are reported by compile.
std::string ClaimNode(const tsr_node_view& node, const tsr_graph_view& graph);
// The ops the backend registers, "domain.Op" or "Op" for ai.onnx.
std::vector<std::string> SupportedOps();

// ---- attention tiling ------------------------------------------------------------------
struct AttentionTiling {
  int rows_per_block = 0;   // query rows (warps) per block
  uint64_t smem_bytes = 0;  // dynamic shared memory per block
  std::string error;        // non-empty: unsupported, with the reason
};
// Picks rows per block (8, 4, 2 or 1: the most that fit `smem_limit` bytes of
// shared memory per block, fewer when Sq is small) for head dims D, Dv.
AttentionTiling ChooseAttentionTiling(int64_t D, int64_t Dv, int64_t Sq, uint64_t smem_limit);

// ---- geometry -------------------------------------------------------------------------
// Element strides of a row-major tensor.
std::vector<int64_t> RowMajorStrides(const std::vector<int64_t>& dims);
// Strides of `in` broadcast to `out` (right-aligned; 0 on broadcast axes).
// Error when `in` does not broadcast to `out` or rank > gpu::kMaxRank.
Err BroadcastStrides(const std::vector<int64_t>& out, const std::vector<int64_t>& in, std::vector<int64_t>* strides);
// Fills a BcastGeom for up to 3 operands; adjacent axes that are contiguous
// for every operand are merged (fewer index divisions in the kernel).
Err MakeBcastGeom(const std::vector<int64_t>& out, const std::vector<std::vector<int64_t>>& ins, gpu::BcastGeom* g);
// Transpose of `in_dims` by `perm` as a strided copy into a contiguous output.
Err MakeTransposeGeom(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& perm, gpu::CopyGeom* g);
// [outer, R, inner] of a reduction over `axes` (normalized, sorted, adjacent
// after dropping size-1 axes). Error when the axes are not adjacent.
Err ReduceShape(const std::vector<int64_t>& dims, const std::vector<int64_t>& axes, int64_t* outer, int64_t* R,
                int64_t* inner);
int64_t Numel(const std::vector<int64_t>& dims);

}  // namespace tessera::cuda

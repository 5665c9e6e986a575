// Internal to runtime/session*.cpp: the Session's implementation types (open
// devices, compiled variants, execution contexts, state slots) and
// Session::Impl. Not installed, not included anywhere else.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "compiler/plan.h"
#include "runtime/backend_registry.h"
#include "runtime/plan_artifacts.h"
#include "runtime/session.h"
#include "runtime/trace.h"

namespace tessera {
namespace session_internal {

// A device opened through its backend. Calls other than execute are
// serialized by `mu` (the ABI's rule).
struct OpenDevice {
  std::string role;
  const LoadedBackend* backend = nullptr;
  int32_t index = 0;
  tsr_device_t* dev = nullptr;
  std::mutex mu;
  ~OpenDevice() {
    if (dev) backend->api->device_close(dev);
  }
};

// One compiled segment: the executable and, per view value, where it lives.
struct SegmentExec {
  int32_t device = 0;
  tsr_executable_t* exe = nullptr;
  OpenDevice* dev = nullptr;
  std::vector<int64_t> offsets;  // per view value: arena offset, -1 for constants
  std::vector<std::string> names;  // per view value: its name (state binding)
  uint64_t scratch_bytes = 0;
};

// A declared state value (Session::DeclareState). Its current value is in
// `bufs[home]` when home is set, else in `host` (zeros until SetState).
// Buffers are allocated once per device and freed with the session.
struct StateSlot {
  std::string input, output;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> dims;
  uint64_t bytes = 0;
  std::map<OpenDevice*, tsr_buffer_t*> bufs;
  OpenDevice* home = nullptr;
  Tensor host;
};

// How one compiled variant uses the session's state (bound on its first run).
struct VariantState {
  std::vector<int32_t> home;       // per slot: plan device holding it, -1 = unused by this variant
  std::vector<std::string> mode;   // per slot: "in_place" | "copy" | "read_only" | "unused"
  std::vector<tsr_buffer_t*> buf;  // per slot: the state buffer on `home`
  // per segment: (view value index, state buffer) bindings replacing the arena's
  std::vector<std::vector<std::pair<uint32_t, tsr_buffer_t*>>> seg_bind;
  // (slot, plan device): a device other than home also reads the input; its
  // arena input buffer gets a copy of the state before the run
  std::vector<std::pair<int32_t, int32_t>> pre_copies;
  std::vector<int32_t> copy_back;  // slots whose output is copied arena -> state after the run
};

// hetero: a thread that issues one device's work for an ExecContext, one job
// at a time; it lives as long as the context (contexts are pooled), so runs do
// not pay for creating threads.
class IssueThread {
 public:
  IssueThread() : th_([this] { Loop(); }) {}
  ~IssueThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    th_.join();
  }
  void Start(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = std::move(job);
      busy_ = true;
    }
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !busy_; });
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || busy_; });
      if (!busy_) return;  // stop_ with no job
      std::function<void()> job = std::move(job_);
      lock.unlock();
      job();
      lock.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool busy_ = false, stop_ = false;
  std::thread th_;  // last: starts after the members above exist
};

// Per-run resources: an arena and a stream per device, scratch per segment.
struct ExecContext {
  std::vector<tsr_buffer_t*> arenas;
  std::vector<tsr_stream_t*> streams;
  std::vector<tsr_buffer_t*> scratch;
  uint64_t bytes = 0;
  // hetero: cross-device transfers and timing. Events are created on first
  // use by the thread that issues work for their device, null where the
  // backend has no events. Staging buffers are sized before a run starts and
  // stay untouched until every stream of the run has been synchronized.
  std::vector<std::vector<uint8_t>> staging;   // per transfer
  std::vector<tsr_event_t*> transfer_events;   // per transfer, on the source device
  std::vector<tsr_event_t*> seg_start, seg_end;  // per segment, on its device
  std::vector<tsr_event_t*> origin;            // per device: recorded when the run starts
  std::vector<std::unique_ptr<IssueThread>> issuers;  // for the 2nd, 3rd, ... active device
};

// hetero: one entry of a device's issue order (Variant::schedule).
struct DeviceOp {
  enum Kind { kSegment, kSend, kRecv } kind;
  int32_t index;  // segment or transfer
};

struct Variant {
  std::string key;
  std::vector<std::string> specialized;  // inputs compiled in as constants (compiler/specialize.h)
  Plan plan;
  std::vector<OpenDevice*> devices;  // per plan device
  std::vector<SegmentExec> segments;
  double compile_ms = 0;
  std::mutex pool_mu;
  std::vector<std::unique_ptr<ExecContext>> pool;  // idle contexts
  std::vector<ExecContext*> all_contexts;
  std::unordered_map<std::string, const Value*> values;  // name -> plan graph value
  // hetero: per plan device, the order its thread issues work in: segments,
  // sends (d2h into host staging right after the producing segment) and
  // receives (h2d from staging before the first consumer).
  std::vector<std::vector<DeviceOp>> schedule;
  // precision: compiled artifacts from the plan file (consumed by Prepare) and what became of them.
  std::vector<PlanArtifact> artifacts;
  ArtifactReport artifact_report;
  std::unique_ptr<VariantState> state;  // null until a run of a session with state binds it
  void DestroyContext(ExecContext* c);
  ~Variant();
};

using FeedMap = std::map<std::string, const Tensor*>;


inline std::string JoinNames(const std::vector<IoInfo>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i].name;
  return s;
}

inline std::string DimsToString(const std::vector<int64_t>& d) { return Shape::FromInts(d).ToString(); }

}  // namespace session_internal

struct Session::Impl {
  using OpenDevice = session_internal::OpenDevice;
  using StateSlot = session_internal::StateSlot;
  using Variant = session_internal::Variant;
  using ExecContext = session_internal::ExecContext;
  using FeedMap = session_internal::FeedMap;

  SessionOptions opts;
  std::string source;
  std::unique_ptr<Graph> model;  // null for sessions loaded from a plan
  std::mutex mu;                 // guards devices and variants
  std::map<std::string, std::unique_ptr<OpenDevice>> devices;
  std::map<std::string, std::unique_ptr<Variant>> variants;
  Variant* last_variant = nullptr;
  std::set<std::string> value_inputs;  // inputs specialized by value (grows as compiles discover them)
  std::atomic<int64_t> runs{0};
  std::atomic<uint64_t> live_bytes{0};
  std::atomic<uint64_t> peak_bytes{0};

  ~Impl() {
    if (tracer) (void)tracer->Write();  // hetero: best effort; Session::WriteTrace reports errors
    variants.clear();  // executables before devices
    for (auto& slot : slots)
      for (auto& [od, b] : slot.bufs)
        if (b) od->backend->api->buffer_free(b);
    for (auto& [od, st] : state_streams)
      if (st) od->backend->api->stream_destroy(st);
    devices.clear();
  }

  // ---- state (Session::DeclareState) ----
  std::vector<StateSlot> slots;
  std::map<std::string, int32_t> slot_of_input, slot_of_output;
  std::mutex state_mu;  // serializes runs of a session with state, SetState and GetState
  std::map<OpenDevice*, tsr_stream_t*> state_streams;  // for uploads/downloads outside runs
  Result<tsr_stream_t*> StateStream(OpenDevice* od);
  Result<tsr_buffer_t*> StateBuffer(StateSlot& slot, OpenDevice* od);
  // Moves the slot's current value into its buffer on `od` (synchronously).
  Status MoveState(StateSlot& slot, OpenDevice* od);
  Result<Tensor> ReadState(StateSlot& slot);
  Status BindState(Variant& v);
  Status StateBeforeRun(Variant& v, ExecContext* ctx);
  Status StateAfterRun(Variant& v, ExecContext* ctx);

  Result<OpenDevice*> OpenRole(const std::string& role);
  Result<std::vector<std::string>> ResolveRoles();
  Result<std::vector<Tensor>> EvaluateOnCpu(const Node& node);
  // Returns null (and the inputs in *need) when the graph needs the values
  // of inputs that are not specialized yet.
  Result<std::unique_ptr<Variant>> Compile(const std::map<std::string, std::vector<int64_t>>& shapes,
                                           const FeedMap& feeds, std::set<std::string>* need);
  Status Prepare(Variant& v);
  // `feeds` is null when no input values are known (eager compile at load):
  // then a model that needs input values returns null with *deferred set.
  Result<Variant*> GetVariant(const std::map<std::string, std::vector<int64_t>>& shapes, const FeedMap* feeds,
                              const std::vector<IoInfo>& inputs, bool* deferred = nullptr);
  Result<ExecContext*> Acquire(Variant& v);
  void Release(Variant& v, ExecContext* c);

  // ---- hetero ----
  void BuildSchedule(Variant& v);
  // Issues the plan on every device (one issuing thread per device when the
  // plan spans several) and waits for all of it. Feeds must stay valid.
  Status Execute(Variant& v, ExecContext* ctx, const FeedMap& feeds);
  std::unique_ptr<Tracer> tracer;            // null when tracing is off
  std::atomic<uint64_t> transfer_bytes{0};   // over all runs
  std::atomic<int64_t> transfer_count{0};
  std::atomic<int64_t> next_run_id{0};       // numbers runs in the trace
  std::atomic<uint64_t> last_run_transfer_bytes{0};
  std::string auto_json;                     // "auto" placement report (JSON object text), or ""
  // ---- end hetero ----
};

}  // namespace tessera

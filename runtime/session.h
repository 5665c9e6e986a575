// Session: loads a model or a plan, opens backends, compiles segments, owns
// the arenas and runs.
//
// Thread safety: Run() may be called from several threads at once. Each run
// takes an execution context (one arena and one stream per device) from a
// pool, so concurrent runs never share intermediate memory. Compilation of a
// new shape variant is serialized by a mutex.
//
// Shapes: a model whose inputs have symbolic dims is compiled per set of
// concrete input shapes ("variant"), at creation when options bind every
// symbol (dim.<name>), otherwise on the first run that needs it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "compiler/plan.h"
#include "graph/graph.h"
#include "runtime/options.h"

namespace tessera {

struct LoadedPlan;  // runtime/plan_file.h

// A value that persists across runs on the device where the plan reads it
// (Session::DeclareState): graph input `input` is read from a persistent
// device buffer instead of a feed, and graph output `output` (same dtype and
// shape; "" = read-only state) becomes its new value after each run.
struct StateSpec {
  std::string input;
  std::string output;
};

struct IoInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> dims;            // -1 for symbolic
  std::vector<std::string> dim_names;   // symbol, or "" for known dims
};

class Session {
 public:
  ~Session();
  static Result<std::unique_ptr<Session>> FromFile(const std::string& path, const SessionOptions& opts);
  static Result<std::unique_ptr<Session>> FromBytes(const void* data, size_t size, const SessionOptions& opts);
  // From an imported graph (takes ownership).
  static Result<std::unique_ptr<Session>> FromGraph(std::unique_ptr<Graph> model, const SessionOptions& opts);

  const std::vector<IoInfo>& inputs() const { return inputs_; }
  const std::vector<IoInfo>& outputs() const { return outputs_; }

  // Runs with named inputs; fills `results` with the requested outputs (all
  // outputs, in model order, when output_names is empty).
  Status Run(const std::vector<std::pair<std::string, const Tensor*>>& feeds,
             const std::vector<std::string>& output_names, std::vector<Tensor>* results);

  // ---- state (values that stay on the devices across runs) ----
  // Declares state before the first Run (FailedPrecondition after). Inputs
  // must be runtime graph inputs with static shapes, outputs graph outputs of
  // the same dtype and shape; each input and output at most once. Declared
  // state starts as zeros until SetState.
  //
  // Then Run does not take the state inputs (feeding one is InvalidArgument
  // naming it) and, with an empty output_names, returns every output EXCEPT
  // the state outputs; a state output named in output_names is returned too.
  // After a successful run the state holds the outputs' values. A state
  // output is written in place into the state buffer when its producer may
  // update in place (tessera.SGDUpdate/AdamWUpdate, BatchNormalization,
  // elementwise ops) and every other reader of the input on that device runs
  // before it; otherwise it is written to the run's arena and copied into the
  // state buffer after the run ("copy" mode). DescribeJson's "state" says
  // which mode and device each value got. A failed run may leave state
  // partially updated.
  //
  // State lives on the device of the node that writes it (read-only state: the
  // first device that reads it); a device that also reads the input gets a
  // copy at the start of each run. Values move between devices when a new
  // shape variant places them elsewhere. The plan still reserves arena space
  // for state values (unused for in-place ones).
  //
  // inputs()/outputs() still list the state inputs and outputs.
  // TESSERA_STATE_IN_PLACE=0 in the environment forces "copy" mode (A/B checks).
  //
  // Runs of a session with state are serialized (one at a time).
  Status DeclareState(const std::vector<StateSpec>& state);
  // Replaces the value of state input `input` (dtype and shape must match).
  // Uploads now when the value already lives on a device, else at the next run.
  Status SetState(const std::string& input, const Tensor& value);
  // The current value of state input `input` (downloaded from its device).
  Result<Tensor> GetState(const std::string& input);
  const std::vector<StateSpec>& state() const { return state_; }

  // JSON description (tessera.h tsr_session_describe_json).
  Result<std::string> DescribeJson();
  std::string StatsJson() const;
  // Saves the compiled plan; compiles the default variant first if needed.
  // With `with_artifacts`, each backend's compiled form of its segments
  // (backend.h executable_serialize) is stored too, so loading skips work.
  Status SavePlan(const std::string& path, bool with_artifacts = true);

  // hetero: writes the Chrome trace of every run so far to the `trace`
  // option's file (also done, errors ignored, when the session is destroyed).
  // FailedPrecondition when tracing is off.
  Status WriteTrace();
  // The trace document (JSON text) of the runs so far; "" when tracing is off.
  std::string TraceJson() const;

  struct Impl;

 private:
  Session();
  // A session over a loaded plan; `what` names it in errors, `source` in describe.
  static Result<std::unique_ptr<Session>> FromPlan(LoadedPlan lp, const std::string& what,
                                                   const std::string& source, const SessionOptions& opts);
  std::unique_ptr<Impl> impl_;
  std::vector<IoInfo> inputs_, outputs_;
  std::vector<StateSpec> state_;
};

}  // namespace tessera

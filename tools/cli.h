// Shared pieces of the `tessera` command-line tool. The tool talks to the
// runtime through the public C API (tessera/tessera.h); `train` alone uses
// the C++ training API (runtime/training_session.h), which has no C form yet.
//
// Error model inside the tool: functions that can fail return an exit code
// (kExitOk, kExitFailure, kExitUsage) after printing `tessera: error: ...` to
// stderr through Fail(); nothing is thrown out of a command.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/tessera.h"

namespace tessera::cli {

using json = nlohmann::json;

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // mismatch, runtime error
inline constexpr int kExitUsage = 2;    // bad usage or invalid input

// Prints "tessera: error: <message>" to stderr and returns `code`.
int Fail(int code, const std::string& message);
// Prints "tessera: note: <message>" to stderr.
void Note(const std::string& message);

// ---- RAII over the C API handles ----
struct StatusDeleter { void operator()(tsr_status_t* s) const { tsr_status_free(s); } };
struct OptionsDeleter { void operator()(tsr_options_t* o) const { tsr_options_free(o); } };
struct SessionDeleter { void operator()(tsr_session_t* s) const { tsr_session_free(s); } };
struct TensorDeleter { void operator()(tsr_tensor_t* t) const { tsr_tensor_free(t); } };
struct StringDeleter { void operator()(char* s) const { tsr_string_free(s); } };
using StatusPtr = std::unique_ptr<tsr_status_t, StatusDeleter>;
using OptionsPtr = std::unique_ptr<tsr_options_t, OptionsDeleter>;
using SessionPtr = std::unique_ptr<tsr_session_t, SessionDeleter>;
using TensorPtr = std::unique_ptr<tsr_tensor_t, TensorDeleter>;
using StringPtr = std::unique_ptr<char, StringDeleter>;

// Takes ownership of `s`. Returns true (and fills code/message) when it is an error.
bool IsError(tsr_status_t* s, int32_t* code, std::string* message);
// Exit code for a failed session creation: kExitUsage for the codes that mean
// the model or the options are invalid, else kExitFailure.
int ExitCodeForCreate(int32_t code);
const char* CodeName(int32_t code);

// ---- command-line parsing ----
struct FlagSpec {
  std::string name;       // "--device"
  bool takes_value = true;
  bool repeatable = false;
  std::string short_name;  // "-o" (optional)
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;  // flag -> values in order ("" for switches)
  bool help = false;

  bool Has(const std::string& flag) const { return values.count(flag) != 0; }
  // The last value given for `flag`, or `fallback`.
  std::string Get(const std::string& flag, const std::string& fallback = "") const;
  const std::vector<std::string>& All(const std::string& flag) const;
};

// Parses argv[first..argc) for command `cmd`. Accepts "--flag value",
// "--flag=value", "-h"/"--help" and "--" (the rest is positional). Returns
// kExitOk or kExitUsage (after printing the error).
int ParseArgs(const std::string& cmd, int argc, char** argv, int first, const std::vector<FlagSpec>& specs,
              Args* out);

// Strict number parsing; print an error naming the flag and return kExitUsage on failure.
int ParseInt(const std::string& flag, const std::string& text, int64_t min_value, int64_t* out);
int ParseDouble(const std::string& flag, const std::string& text, double min_value, double* out);

// Builds session options from the common flags (--device, --config, --threads,
// --dim, --dump-after, --opt-level, --precision, --strict, --max-alloc-bytes).
// --config (a deployment config, "FILE" or "FILE#training") is applied first,
// so every other flag overrides the file. Returns kExitOk, or kExitUsage after
// printing why (a bad config prints "--config: FILE:LINE:COL: ...").
int BuildOptions(const Args& args, OptionsPtr* out, std::map<std::string, int64_t>* dims);

// Checks that `path` exists and is a regular file; kExitUsage with a message naming it otherwise.
int CheckModelPath(const std::string& path);

// Creates a session, timing it. Prints the runtime's message on failure.
int CreateSession(const std::string& path, const tsr_options_t* options, SessionPtr* out, double* out_ms);

// ---- model I/O description ----
struct IoInfo {
  std::string name;
  int32_t dtype = 0;
  std::vector<int64_t> dims;            // -1 for symbolic
  std::vector<std::string> dim_names;   // "" for known dims
};
int GetIoInfo(tsr_session_t* session, std::vector<IoInfo>* inputs, std::vector<IoInfo>* outputs);
std::string ShapeString(const IoInfo& io);

// ---- tensors ----
const char* DtypeName(int32_t dtype);
size_t DtypeSize(int32_t dtype);  // 0 for types the tool cannot handle (string, undefined)
std::vector<int64_t> Dims(const tsr_tensor_t* t);
std::string DimsString(const std::vector<int64_t>& dims);
int64_t ElementCount(const std::vector<int64_t>& dims);
// Element `i` of `t` as a double (bool -> 0/1, f16/bf16 widened).
double ElementAsDouble(const tsr_tensor_t* t, size_t i);
// "[0.1, -2, ...]" with up to `n` values.
std::string FirstValues(const tsr_tensor_t* t, size_t n);
json FirstValuesJson(const tsr_tensor_t* t, size_t n);

// Inputs: from DIR/input_K.pb (checked against the model's inputs) or
// generated from a fixed seed (floats uniform [-1,1], ints in [0,10), bool
// random); symbolic dims take `dims` bindings, else 1 with a note on stderr.
int LoadInputs(const std::string& dir, const std::vector<IoInfo>& inputs, std::vector<TensorPtr>* out);
int GenerateInputs(const std::vector<IoInfo>& inputs, const std::map<std::string, int64_t>& dims, uint64_t seed,
                   std::vector<TensorPtr>* out);

// Runs the session once; `outputs` receives the model's outputs in order.
// Options, session, I/O info and inputs (--inputs DIR, else generated from
// `seed`) for `run` and `bench`. Returns an exit code (kExitOk on success).
struct PreparedRun {
  OptionsPtr options;
  std::map<std::string, int64_t> dims;
  SessionPtr session;
  double compile_ms = 0;
  std::vector<IoInfo> in_info, out_info;
  std::vector<TensorPtr> inputs;
};
int PrepareRun(const Args& args, const std::string& model, uint64_t seed, PreparedRun* out);

int RunOnce(tsr_session_t* session, const std::vector<IoInfo>& in_info, const std::vector<TensorPtr>& inputs,
            size_t num_outputs, std::vector<TensorPtr>* outputs, double* out_ms);

// ---- JSON from the runtime ----
// Fetches and parses tsr_session_describe_json / tsr_session_stats_json / tsr_devices_json.
int DescribeJson(tsr_session_t* session, json* out, std::string* raw);
int StatsJson(tsr_session_t* session, json* out);

// Nodes per device, from a describe document (empty when it says nothing about placement).
std::map<std::string, int64_t> PlacementCounts(const json& describe);
std::string PlacementString(const std::map<std::string, int64_t>& counts);

// Pretty number printing.
std::string FormatMs(double ms);
std::string FormatBytes(double bytes);

// ---- commands ----
int CmdRun(int argc, char** argv);
int CmdCompile(int argc, char** argv);
int CmdBench(int argc, char** argv);
int CmdDevices(int argc, char** argv);
int CmdInspect(int argc, char** argv);
int CmdTrain(int argc, char** argv);  // tools/cli_train.cpp

}  // namespace tessera::cli

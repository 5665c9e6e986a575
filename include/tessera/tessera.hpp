// Tessera C++ API: a thin RAII wrapper over the C API (tessera.h), header-only.
// Errors become tessera::Error exceptions on the caller's side of the API;
// nothing throws across the library boundary itself.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tessera/tessera.h"

namespace tessera {

class Error : public std::runtime_error {
 public:
  Error(int32_t code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  int32_t code() const { return code_; }

 private:
  int32_t code_;
};

inline void Check(tsr_status_t* s) {
  if (!s) return;
  Error e(tsr_status_code(s), tsr_status_message(s));
  tsr_status_free(s);
  throw e;
}

inline std::string TakeString(char* s) {
  std::string r = s ? s : "";
  tsr_string_free(s);
  return r;
}

class Options {
 public:
  Options() { Check(tsr_options_create(&o_)); }
  ~Options() { tsr_options_free(o_); }
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;
  Options& Set(const std::string& key, const std::string& value) {
    Check(tsr_options_set(o_, key.c_str(), value.c_str()));
    return *this;
  }
  // Applies a deployment config held in memory (TOML text); workload
  // "inference" or "training" picks the table. Set("config", path) loads a file.
  Options& LoadConfigString(const std::string& toml_text, const std::string& workload = "inference") {
    Check(tsr_options_load_config_string(o_, toml_text.c_str(), workload.c_str()));
    return *this;
  }
  const tsr_options_t* get() const { return o_; }

 private:
  tsr_options_t* o_ = nullptr;
};

class HostTensor {
 public:
  HostTensor(int32_t dtype, const std::vector<int64_t>& dims) {
    Check(tsr_tensor_create(dtype, dims.data(), dims.size(), &t_));
  }
  explicit HostTensor(tsr_tensor_t* t) : t_(t) {}  // takes ownership
  static HostTensor LoadPb(const std::string& path) {
    tsr_tensor_t* t = nullptr;
    Check(tsr_tensor_load_pb(path.c_str(), &t, nullptr));
    return HostTensor(t);
  }
  HostTensor(HostTensor&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  HostTensor& operator=(HostTensor&& o) noexcept {
    std::swap(t_, o.t_);
    return *this;
  }
  ~HostTensor() { tsr_tensor_free(t_); }
  int32_t dtype() const { return tsr_tensor_dtype(t_); }
  std::vector<int64_t> dims() const {
    const int64_t* d = tsr_tensor_dims(t_);
    return std::vector<int64_t>(d, d + tsr_tensor_rank(t_));
  }
  void* data() { return tsr_tensor_data(t_); }
  template <typename T>
  T* data_as() { return static_cast<T*>(data()); }
  size_t nbytes() const { return tsr_tensor_nbytes(t_); }
  const tsr_tensor_t* get() const { return t_; }

 private:
  tsr_tensor_t* t_ = nullptr;
};

class Session {
 public:
  explicit Session(const std::string& path, const Options* opts = nullptr) {
    Check(tsr_session_create_from_file(path.c_str(), opts ? opts->get() : nullptr, &s_));
  }
  ~Session() { tsr_session_free(s_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  size_t input_count() const { return tsr_session_input_count(s_); }
  size_t output_count() const { return tsr_session_output_count(s_); }
  std::string input_name(size_t i) const {
    const char* n = nullptr;
    Check(tsr_session_input_info(s_, i, &n, nullptr, nullptr, nullptr, nullptr));
    return n;
  }
  std::string output_name(size_t i) const {
    const char* n = nullptr;
    Check(tsr_session_output_info(s_, i, &n, nullptr, nullptr, nullptr, nullptr));
    return n;
  }
  // Runs with inputs by name; returns every output in model order.
  std::vector<HostTensor> Run(const std::vector<std::pair<std::string, const HostTensor*>>& inputs) {
    std::vector<const char*> names;
    std::vector<const tsr_tensor_t*> ts;
    for (const auto& [n, t] : inputs) {
      names.push_back(n.c_str());
      ts.push_back(t->get());
    }
    std::vector<tsr_tensor_t*> outs(output_count(), nullptr);
    Check(tsr_session_run(s_, names.data(), ts.data(), ts.size(), nullptr, outs.size(), outs.data()));
    std::vector<HostTensor> r;
    for (auto* o : outs) r.emplace_back(o);
    return r;
  }
  std::string DescribeJson() {
    char* j = nullptr;
    Check(tsr_session_describe_json(s_, &j));
    return TakeString(j);
  }
  void SavePlan(const std::string& path) { Check(tsr_session_save_plan(s_, path.c_str())); }

 private:
  tsr_session_t* s_ = nullptr;
};

// Trains an ONNX forward model (tessera.h tsr_training_session_*); settings
// come from Options' "training.<key>" entries.
class TrainingSession {
 public:
  using Batch = std::vector<std::pair<std::string, const HostTensor*>>;
  explicit TrainingSession(const std::string& onnx_path, const Options* opts = nullptr) {
    Check(tsr_training_session_create_from_file(onnx_path.c_str(), opts ? opts->get() : nullptr, &s_));
  }
  ~TrainingSession() { tsr_training_session_free(s_); }
  TrainingSession(const TrainingSession&) = delete;
  TrainingSession& operator=(const TrainingSession&) = delete;

  // One optimizer step (batch inputs and "labels"); returns the loss.
  double Step(const Batch& batch) {
    Split sp(batch);
    double loss = 0;
    Check(tsr_training_session_step(s_, sp.names.data(), sp.tensors.data(), sp.tensors.size(), &loss));
    return loss;
  }
  // Forward only; the first num_outputs model outputs. *loss (when given) is
  // NaN without "labels".
  std::vector<HostTensor> Eval(const Batch& batch, size_t num_outputs = 1, double* loss = nullptr) {
    Split sp(batch);
    std::vector<tsr_tensor_t*> outs(num_outputs, nullptr);
    Check(tsr_training_session_eval(s_, sp.names.data(), sp.tensors.data(), sp.tensors.size(), outs.data(),
                                    outs.size(), loss));
    std::vector<HostTensor> r;
    for (auto* o : outs) r.emplace_back(o);
    return r;
  }
  int64_t step() const { return tsr_training_session_step_count(s_); }
  void SaveCheckpoint(const std::string& path) { Check(tsr_training_session_save_checkpoint(s_, path.c_str())); }
  void LoadCheckpoint(const std::string& path) { Check(tsr_training_session_load_checkpoint(s_, path.c_str())); }
  void ExportOnnx(const std::string& path) { Check(tsr_training_session_export_onnx(s_, path.c_str())); }

 private:
  struct Split {
    explicit Split(const Batch& b) {
      for (const auto& [n, t] : b) {
        names.push_back(n.c_str());
        tensors.push_back(t->get());
      }
    }
    std::vector<const char*> names;
    std::vector<const tsr_tensor_t*> tensors;
  };
  tsr_training_session_t* s_ = nullptr;
};

}  // namespace tessera

// The public C API (include/tessera/tessera.h) over the C++ runtime. Every
// entry point catches C++ exceptions and turns them into a status.
#include <cstdlib>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>

#include "graph/onnx/tensor_proto.h"
#include "runtime/backend_registry.h"
#include "runtime/config.h"
#include "runtime/session.h"
#include "runtime/training_session.h"
#include "tessera/tessera.h"

struct tsr_status_t {
  int32_t code;
  std::string message;
};
struct tsr_options_t {
  tessera::SessionOptions opts;
};
struct tsr_session_t {
  std::unique_ptr<tessera::Session> session;
  // Borrowed-pointer storage for input/output info.
  struct Info {
    std::vector<int64_t> dims;
    std::vector<const char*> dim_names;
  };
  std::vector<Info> in_info, out_info;
};
struct tsr_tensor_t {
  tessera::Tensor t;
};
struct tsr_training_session_t {
  std::unique_ptr<tessera::TrainingSession> ts;
};

namespace {

using tessera::Status;

tsr_status_t* MakeStatus(int32_t code, std::string msg) {
  auto* s = new (std::nothrow) tsr_status_t{code, std::move(msg)};
  return s;
}

tsr_status_t* ToC(const Status& s) {
  if (s.ok()) return nullptr;
  return MakeStatus(static_cast<int32_t>(s.code()), s.message());
}

tsr_status_t* NullArg(const char* what) {
  return MakeStatus(TSR_ERR_INVALID_ARGUMENT, std::string(what) + " must not be NULL");
}

char* CopyString(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

template <typename F>
tsr_status_t* Guard(F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return MakeStatus(TSR_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return MakeStatus(TSR_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return MakeStatus(TSR_ERR_INTERNAL, "internal error: unknown exception");
  }
}

void FillInfo(tsr_session_t* s) {
  auto fill = [](const std::vector<tessera::IoInfo>& v, std::vector<tsr_session_t::Info>* out) {
    out->clear();
    for (const auto& io : v) {
      tsr_session_t::Info i;
      i.dims = io.dims;
      for (const auto& n : io.dim_names) i.dim_names.push_back(n.c_str());
      out->push_back(std::move(i));
    }
  };
  fill(s->session->inputs(), &s->in_info);
  fill(s->session->outputs(), &s->out_info);
}

tsr_status_t* IoInfoC(const tsr_session_t* s, size_t index, bool input, const char** out_name, int32_t* out_dtype,
                      size_t* out_rank, const int64_t** out_dims, const char* const** out_dim_names) {
  if (!s) return NullArg("session");
  const auto& v = input ? s->session->inputs() : s->session->outputs();
  const auto& info = input ? s->in_info : s->out_info;
  if (index >= v.size())
    return MakeStatus(TSR_ERR_OUT_OF_RANGE, std::string(input ? "input" : "output") + " index " +
                                                std::to_string(index) + " is out of range (the model has " +
                                                std::to_string(v.size()) + ")");
  if (out_name) *out_name = v[index].name.c_str();
  if (out_dtype) *out_dtype = static_cast<int32_t>(v[index].dtype);
  if (out_rank) *out_rank = v[index].dims.size();
  if (out_dims) *out_dims = info[index].dims.data();
  if (out_dim_names) *out_dim_names = info[index].dim_names.data();
  return nullptr;
}

}  // namespace

extern "C" {

const char* tsr_version(void) { return TESSERA_VERSION; }

int32_t tsr_status_code(const tsr_status_t* s) { return s ? s->code : TSR_OK; }
const char* tsr_status_message(const tsr_status_t* s) { return s ? s->message.c_str() : ""; }
void tsr_status_free(tsr_status_t* s) { delete s; }
void tsr_string_free(char* s) { std::free(s); }

tsr_status_t* tsr_options_create(tsr_options_t** out) {
  if (!out) return NullArg("out_options");
  return Guard([&]() -> tsr_status_t* {
    *out = new tsr_options_t();
    return nullptr;
  });
}
void tsr_options_free(tsr_options_t* o) { delete o; }
tsr_status_t* tsr_options_set(tsr_options_t* o, const char* key, const char* value) {
  if (!o) return NullArg("options");
  if (!key) return NullArg("key");
  if (!value) return NullArg("value");
  return Guard([&]() { return ToC(o->opts.Set(key, value)); });
}
tsr_status_t* tsr_options_load_config_string(tsr_options_t* o, const char* toml_text, const char* workload) {
  if (!o) return NullArg("options");
  if (!toml_text) return NullArg("toml_text");
  return Guard([&]() -> tsr_status_t* {
    auto w = tessera::ParseWorkload(workload ? workload : "inference");
    if (!w.ok()) return ToC(w.status());
    auto cfg = tessera::LoadConfigString(toml_text, "<string>");
    if (!cfg.ok()) return ToC(cfg.status());
    return ToC(o->opts.ApplyConfig(*cfg, *w));
  });
}
tsr_status_t* tsr_options_json(const tsr_options_t* o, char** out) {
  if (!o) return NullArg("options");
  if (!out) return NullArg("out_json");
  return Guard([&]() -> tsr_status_t* {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : o->opts.ToMap()) j[k] = v;
    if (!o->opts.trace.empty()) j["trace"] = o->opts.trace;
    *out = CopyString(j.dump());
    return nullptr;
  });
}

tsr_status_t* tsr_tensor_create(int32_t dtype, const int64_t* dims, size_t rank, tsr_tensor_t** out) {
  if (!out) return NullArg("out_tensor");
  if (rank && !dims) return NullArg("dims");
  return Guard([&]() -> tsr_status_t* {
    if (!tessera::IsKnownDType(dtype) || dtype == TSR_DTYPE_STRING)
      return MakeStatus(TSR_ERR_INVALID_ARGUMENT, "unsupported tensor dtype " + std::to_string(dtype));
    auto t = tessera::Tensor::Zeros(static_cast<tessera::DType>(dtype), std::vector<int64_t>(dims, dims + rank));
    if (!t.ok()) return ToC(t.status());
    *out = new tsr_tensor_t{std::move(t).value()};
    return nullptr;
  });
}

tsr_status_t* tsr_tensor_create_from_data(int32_t dtype, const int64_t* dims, size_t rank, const void* data,
                                          size_t nbytes, tsr_tensor_t** out) {
  if (!out) return NullArg("out_tensor");
  if (rank && !dims) return NullArg("dims");
  if (nbytes && !data) return NullArg("data");
  return Guard([&]() -> tsr_status_t* {
    if (!tessera::IsKnownDType(dtype) || dtype == TSR_DTYPE_STRING)
      return MakeStatus(TSR_ERR_INVALID_ARGUMENT, "unsupported tensor dtype " + std::to_string(dtype));
    auto t = tessera::Tensor::FromBytes(static_cast<tessera::DType>(dtype), std::vector<int64_t>(dims, dims + rank),
                                        data, nbytes);
    if (!t.ok()) return ToC(t.status());
    *out = new tsr_tensor_t{std::move(t).value()};
    return nullptr;
  });
}

void tsr_tensor_free(tsr_tensor_t* t) { delete t; }
int32_t tsr_tensor_dtype(const tsr_tensor_t* t) { return t ? static_cast<int32_t>(t->t.dtype()) : 0; }
size_t tsr_tensor_rank(const tsr_tensor_t* t) { return t ? t->t.dims().size() : 0; }
const int64_t* tsr_tensor_dims(const tsr_tensor_t* t) { return t ? t->t.dims().data() : nullptr; }
void* tsr_tensor_data(tsr_tensor_t* t) { return t ? t->t.mutable_raw() : nullptr; }
size_t tsr_tensor_nbytes(const tsr_tensor_t* t) { return t ? t->t.nbytes() : 0; }

tsr_status_t* tsr_tensor_load_pb(const char* path, tsr_tensor_t** out, char** out_name) {
  if (!path) return NullArg("path");
  if (!out) return NullArg("out_tensor");
  return Guard([&]() -> tsr_status_t* {
    std::string name;
    auto t = tessera::LoadTensorProtoFile(path, &name);
    if (!t.ok()) return ToC(t.status());
    *out = new tsr_tensor_t{std::move(t).value()};
    if (out_name) *out_name = CopyString(name);
    return nullptr;
  });
}

tsr_status_t* tsr_tensor_save_pb(const char* path, const tsr_tensor_t* t, const char* name) {
  if (!path) return NullArg("path");
  if (!t) return NullArg("tensor");
  return Guard([&]() { return ToC(tessera::SaveTensorProtoFile(path, t->t, name ? name : "")); });
}

tsr_status_t* tsr_session_create_from_file(const char* path, const tsr_options_t* o, tsr_session_t** out) {
  if (!path) return NullArg("path");
  if (!out) return NullArg("out_session");
  return Guard([&]() -> tsr_status_t* {
    tessera::SessionOptions opts = o ? o->opts : tessera::SessionOptions{};
    auto s = tessera::Session::FromFile(path, opts);
    if (!s.ok()) return ToC(s.status());
    auto* cs = new tsr_session_t{std::move(s).value(), {}, {}};
    FillInfo(cs);
    *out = cs;
    return nullptr;
  });
}

tsr_status_t* tsr_session_create_from_bytes(const void* data, size_t size, const tsr_options_t* o,
                                            tsr_session_t** out) {
  if (!data) return NullArg("data");
  if (!out) return NullArg("out_session");
  return Guard([&]() -> tsr_status_t* {
    tessera::SessionOptions opts = o ? o->opts : tessera::SessionOptions{};
    auto s = tessera::Session::FromBytes(data, size, opts);
    if (!s.ok()) return ToC(s.status());
    auto* cs = new tsr_session_t{std::move(s).value(), {}, {}};
    FillInfo(cs);
    *out = cs;
    return nullptr;
  });
}

void tsr_session_free(tsr_session_t* s) { delete s; }
size_t tsr_session_input_count(const tsr_session_t* s) { return s ? s->session->inputs().size() : 0; }
size_t tsr_session_output_count(const tsr_session_t* s) { return s ? s->session->outputs().size() : 0; }

tsr_status_t* tsr_session_input_info(const tsr_session_t* s, size_t i, const char** n, int32_t* dt, size_t* r,
                                     const int64_t** d, const char* const** dn) {
  return IoInfoC(s, i, true, n, dt, r, d, dn);
}
tsr_status_t* tsr_session_output_info(const tsr_session_t* s, size_t i, const char** n, int32_t* dt, size_t* r,
                                      const int64_t** d, const char* const** dn) {
  return IoInfoC(s, i, false, n, dt, r, d, dn);
}

tsr_status_t* tsr_session_run(tsr_session_t* s, const char* const* input_names, const tsr_tensor_t* const* inputs,
                              size_t num_inputs, const char* const* output_names, size_t num_outputs,
                              tsr_tensor_t** out_outputs) {
  if (!s) return NullArg("session");
  if (num_inputs && (!input_names || !inputs)) return NullArg("input_names/inputs");
  if (num_outputs && !out_outputs) return NullArg("out_outputs");
  return Guard([&]() -> tsr_status_t* {
    std::vector<std::pair<std::string, const tessera::Tensor*>> feeds;
    for (size_t i = 0; i < num_inputs; ++i) {
      if (!input_names[i]) return MakeStatus(TSR_ERR_INVALID_ARGUMENT, "input name " + std::to_string(i) + " is NULL");
      if (!inputs[i]) return MakeStatus(TSR_ERR_INVALID_ARGUMENT, std::string("input '") + input_names[i] + "' is NULL");
      feeds.push_back({input_names[i], &inputs[i]->t});
    }
    std::vector<std::string> names;
    if (output_names) {
      for (size_t i = 0; i < num_outputs; ++i) {
        if (!output_names[i]) return MakeStatus(TSR_ERR_INVALID_ARGUMENT, "output name is NULL");
        names.push_back(output_names[i]);
      }
    } else if (num_outputs != s->session->outputs().size()) {
      return MakeStatus(TSR_ERR_INVALID_ARGUMENT, "num_outputs is " + std::to_string(num_outputs) +
                                                      " but the model has " +
                                                      std::to_string(s->session->outputs().size()) + " outputs");
    }
    std::vector<tessera::Tensor> results;
    Status st = s->session->Run(feeds, names, &results);
    if (!st.ok()) return ToC(st);
    for (size_t i = 0; i < num_outputs; ++i) out_outputs[i] = new tsr_tensor_t{std::move(results[i])};
    return nullptr;
  });
}

tsr_status_t* tsr_session_describe_json(tsr_session_t* s, char** out) {
  if (!s) return NullArg("session");
  if (!out) return NullArg("out_json");
  return Guard([&]() -> tsr_status_t* {
    auto j = s->session->DescribeJson();
    if (!j.ok()) return ToC(j.status());
    *out = CopyString(*j);
    return nullptr;
  });
}

tsr_status_t* tsr_session_stats_json(tsr_session_t* s, char** out) {
  if (!s) return NullArg("session");
  if (!out) return NullArg("out_json");
  return Guard([&]() -> tsr_status_t* {
    *out = CopyString(s->session->StatsJson());
    return nullptr;
  });
}

tsr_status_t* tsr_session_save_plan(tsr_session_t* s, const char* path) {
  if (!s) return NullArg("session");
  if (!path) return NullArg("path");
  return Guard([&]() { return ToC(s->session->SavePlan(path)); });
}

// ---- training ----

namespace {
tsr_status_t* BatchOf(const char* const* names, const tsr_tensor_t* const* tensors, size_t n,
                      std::vector<std::pair<std::string, const tessera::Tensor*>>* out) {
  if (n && (!names || !tensors)) return NullArg("names/tensors");
  for (size_t i = 0; i < n; ++i) {
    if (!names[i]) return MakeStatus(TSR_ERR_INVALID_ARGUMENT, "batch name " + std::to_string(i) + " is NULL");
    if (!tensors[i]) return MakeStatus(TSR_ERR_INVALID_ARGUMENT, std::string("batch input '") + names[i] + "' is NULL");
    out->push_back({names[i], &tensors[i]->t});
  }
  return nullptr;
}
}  // namespace

tsr_status_t* tsr_training_session_create_from_file(const char* onnx_path, const tsr_options_t* o,
                                                    tsr_training_session_t** out) {
  if (!onnx_path) return NullArg("onnx_path");
  if (!out) return NullArg("out_session");
  *out = nullptr;
  return Guard([&]() -> tsr_status_t* {
    tessera::SessionOptions opts = o ? o->opts : tessera::SessionOptions{};
    auto topts = tessera::TrainingOptions::FromSettings(opts.training);
    if (!topts.ok()) return ToC(topts.status());
    auto ts = tessera::TrainingSession::FromFile(onnx_path, *topts, opts);
    if (!ts.ok()) return ToC(ts.status());
    *out = new tsr_training_session_t{std::move(ts).value()};
    return nullptr;
  });
}

void tsr_training_session_free(tsr_training_session_t* s) { delete s; }

tsr_status_t* tsr_training_session_step(tsr_training_session_t* s, const char* const* names,
                                        const tsr_tensor_t* const* tensors, size_t n, double* out_loss) {
  if (!s) return NullArg("session");
  return Guard([&]() -> tsr_status_t* {
    std::vector<std::pair<std::string, const tessera::Tensor*>> batch;
    if (tsr_status_t* e = BatchOf(names, tensors, n, &batch)) return e;
    auto r = s->ts->Step(batch);
    if (!r.ok()) return ToC(r.status());
    if (out_loss) *out_loss = r->loss;
    return nullptr;
  });
}

tsr_status_t* tsr_training_session_eval(tsr_training_session_t* s, const char* const* names,
                                        const tsr_tensor_t* const* tensors, size_t n, tsr_tensor_t** out_outputs,
                                        size_t num_outputs, double* out_loss) {
  if (!s) return NullArg("session");
  if (num_outputs && !out_outputs) return NullArg("out_outputs");
  return Guard([&]() -> tsr_status_t* {
    std::vector<std::pair<std::string, const tessera::Tensor*>> batch;
    if (tsr_status_t* e = BatchOf(names, tensors, n, &batch)) return e;
    auto r = s->ts->Eval(batch);
    if (!r.ok()) return ToC(r.status());
    if (num_outputs > r->outputs.size())
      return MakeStatus(TSR_ERR_INVALID_ARGUMENT, "num_outputs is " + std::to_string(num_outputs) +
                                                      " but the model has " + std::to_string(r->outputs.size()) +
                                                      " outputs");
    for (size_t i = 0; i < num_outputs; ++i) out_outputs[i] = new tsr_tensor_t{std::move(r->outputs[i])};
    if (out_loss) *out_loss = r->loss;
    return nullptr;
  });
}

int64_t tsr_training_session_step_count(const tsr_training_session_t* s) { return s ? s->ts->step() : 0; }

tsr_status_t* tsr_training_session_save_checkpoint(tsr_training_session_t* s, const char* path) {
  if (!s) return NullArg("session");
  if (!path) return NullArg("path");
  return Guard([&]() { return ToC(s->ts->SaveCheckpoint(path)); });
}

tsr_status_t* tsr_training_session_load_checkpoint(tsr_training_session_t* s, const char* path) {
  if (!s) return NullArg("session");
  if (!path) return NullArg("path");
  return Guard([&]() { return ToC(s->ts->LoadCheckpoint(path)); });
}

tsr_status_t* tsr_training_session_export_onnx(tsr_training_session_t* s, const char* path) {
  if (!s) return NullArg("session");
  if (!path) return NullArg("path");
  return Guard([&]() { return ToC(s->ts->ExportOnnx(path)); });
}

tsr_status_t* tsr_devices_json(const tsr_options_t* o, char** out) {
  if (!out) return NullArg("out_json");
  return Guard([&]() -> tsr_status_t* {
    using nlohmann::json;
    auto& reg = tessera::BackendRegistry::Get();
    json j;
    j["search_path"] = reg.search_dirs();
    j["backends"] = json::array();
    for (const auto& b : reg.backends()) {
      json bj = {{"name", b->name}, {"path", b->path}, {"version", b->version}, {"usable", b->usable()},
                 {"device_count", b->device_count}};
      if (!b->unusable_reason.empty()) bj["reason"] = b->unusable_reason;
      json devs = json::array();
      for (size_t i = 0; i < b->devices.size(); ++i) {
        const auto& p = b->devices[i];
        devs.push_back({{"index", i}, {"role", b->name == "cpu" ? std::string("cpu") : b->name + ":" + std::to_string(i)},
                        {"name", p.name}, {"kind", p.kind}, {"memory_bytes", p.memory_bytes},
                        {"compute_units", p.compute_units}, {"peak_gflops_f32", p.peak_gflops_f32},
                        {"memory_gbps", p.memory_gbps},
                        {"host_visible", (p.flags & TSR_DEVICE_HOST_VISIBLE) != 0}});
      }
      bj["devices"] = devs;
      j["backends"].push_back(bj);
    }
    *out = CopyString(j.dump(2));
    return nullptr;
  });
}

}  // extern "C"

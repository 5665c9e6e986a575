#include "runtime/session.h"

#include "runtime/session_impl.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "compiler/assign_layouts.h"  // layouts
#include "compiler/graph_view.h"
#include "compiler/lower.h"
#include "compiler/partition.h"
#include "compiler/pass.h"
#include "compiler/precision.h"  // precision
#include "compiler/specialize.h"
#include "graph/onnx/onnx_import.h"
#include "runtime/backend_registry.h"
#include "runtime/plan_artifacts.h"  // precision: artifacts
#include "runtime/plan_file.h"
#include "runtime/auto_placement.h"  // hetero
#include "runtime/trace.h"           // hetero

namespace tessera {
using namespace session_internal;

void Variant::DestroyContext(ExecContext* c) {
  for (size_t d = 0; d < c->arenas.size(); ++d) {
    const tsr_backend_api* api = devices[d]->backend->api;
    if (c->arenas[d]) api->buffer_free(c->arenas[d]);
    if (d < c->streams.size() && c->streams[d]) api->stream_destroy(c->streams[d]);
  }
  for (size_t s = 0; s < c->scratch.size(); ++s)
    if (c->scratch[s]) segments[s].dev->backend->api->buffer_free(c->scratch[s]);
  auto destroy = [](const tsr_backend_api* api, tsr_event_t* e) {
    if (e && api->event_destroy) api->event_destroy(e);
  };
  for (size_t t = 0; t < c->transfer_events.size(); ++t)
    destroy(devices[plan.transfers[t].src_device]->backend->api, c->transfer_events[t]);
  for (size_t s = 0; s < c->seg_start.size(); ++s) {
    destroy(segments[s].dev->backend->api, c->seg_start[s]);
    destroy(segments[s].dev->backend->api, c->seg_end[s]);
  }
  for (size_t d = 0; d < c->origin.size(); ++d) destroy(devices[d]->backend->api, c->origin[d]);
  delete c;
}

Variant::~Variant() {
  for (auto& s : segments)
    if (s.exe) s.dev->backend->api->executable_destroy(s.exe);
  for (auto& c : pool) DestroyContext(c.release());
}

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Identifies a compiled variant: every input's name and concrete shape.
std::string ShapeKey(const std::map<std::string, std::vector<int64_t>>& shapes, const std::vector<IoInfo>& inputs) {
  std::string key;
  for (const auto& in : inputs) key += in.name + DimsToString(shapes.at(in.name)) + ";";
  return key;
}

// The values of the value-specialized inputs, appended to the shape key.
// Bytes are kept whole (not hashed) so that two values never share a variant.
Result<std::string> ValueKey(const std::set<std::string>& names, const FeedMap& feeds) {
  std::string key;
  for (const auto& n : names) {
    auto it = feeds.find(n);
    if (it == feeds.end())
      return Unsupported("input '", n, "' sets shapes or parameters of the model (its value is compiled in) but no ",
                         "value was fed; session state (DeclareState) cannot be such an input");
    const Tensor& t = *it->second;
    key += "|" + n + "=";
    if (t.dtype() == DType::kString) {
      for (const auto& str : t.strings()) key += std::to_string(str.size()) + ":" + str;
    } else {
      key.append(static_cast<const char*>(t.raw()), t.nbytes());
    }
  }
  return key;
}

// Most compiled variants a session keeps (shapes x specialized values).
constexpr size_t kMaxVariants = 256;

IoInfo InfoOf(const Value* v) {
  IoInfo io;
  io.name = v->name();
  io.dtype = v->dtype();
  if (v->shape().has_rank()) {
    for (const Dim& d : v->shape().dims()) {
      io.dims.push_back(d.is_known() ? d.value : -1);
      io.dim_names.push_back(d.is_known() ? "" : (d.symbol.empty() ? "?" : d.symbol));
    }
  }
  return io;
}

void UniquifyNodeNames(Graph& g) {
  std::set<std::string> seen;
  for (Node* n : g.nodes()) {
    if (n->name().empty() || !seen.insert(n->name()).second) {
      n->set_name(g.UniqueName(n->name().empty() ? n->op_type() : n->name()));
      seen.insert(n->name());
    }
  }
}

}  // namespace


namespace {
// hetero: the `trace` option, else $TESSERA_TRACE, turns tracing on.
void InitTrace(Session::Impl& impl) {
  std::string path = impl.opts.trace;
  if (path == "off") return;  // explicitly off, even with $TESSERA_TRACE
  if (path.empty())
    if (const char* env = std::getenv("TESSERA_TRACE")) path = env;
  if (!path.empty()) impl.tracer = std::make_unique<Tracer>(path);
}
}  // namespace

// ---- devices ------------------------------------------------------------------

Result<OpenDevice*> Session::Impl::OpenRole(const std::string& role) {
  auto it = devices.find(role);
  if (it != devices.end()) return it->second.get();
  std::string backend_name = role;
  int32_t index = 0;
  size_t colon = role.find(':');
  if (colon != std::string::npos) {
    backend_name = role.substr(0, colon);
    std::string idx = role.substr(colon + 1);
    char* end = nullptr;
    long v = std::strtol(idx.c_str(), &end, 10);
    if (idx.empty() || *end != '\0' || v < 0 || v > 1024)
      return InvalidArgument("device '", role, "': expected BACKEND or BACKEND:INDEX");
    index = static_cast<int32_t>(v);
  }
  auto& reg = BackendRegistry::Get();
  const LoadedBackend* b = reg.Find(backend_name);
  if (!b) {
    std::string dirs;
    for (const auto& d : reg.search_dirs()) dirs += "\n  " + d;
    return NotFound("device '", role, "': no backend plugin named '", backend_name,
                    "' was found (set TESSERA_BACKEND_PATH); searched:", dirs);
  }
  if (!b->usable())
    return Status(StatusCode::kNoDevice,
                  StrCat("device '", role, "': backend '", backend_name, "' is unusable: ", b->unusable_reason));
  if (index >= b->device_count)
    return Status(StatusCode::kNoDevice, StrCat("device '", role, "': backend '", backend_name, "' has ",
                                                b->device_count, " device(s)"));
  auto od = std::make_unique<OpenDevice>();
  od->role = role;
  od->backend = b;
  od->index = index;
  tsr_error err{};
  int32_t rc = b->api->device_open(b->ctx, index, &od->dev, &err);
  if (rc != TSR_OK) return FromPluginError(rc, err, StrCat("opening device '", role, "'"));
  OpenDevice* raw = od.get();
  devices[role] = std::move(od);
  return raw;
}

Result<std::vector<std::string>> Session::Impl::ResolveRoles() {
  std::vector<std::string> roles;
  for (const auto& r : opts.devices) {
    if (r != "auto") {
      roles.push_back(r);
      continue;
    }
    // Every usable accelerator first, the CPU last; the null skeleton never.
    for (const auto& b : BackendRegistry::Get().backends())
      if (b->usable() && b->name != "cpu" && b->name != "null") roles.push_back(b->name + ":0");
    roles.push_back("cpu");
  }
  std::vector<std::string> uniq;
  for (const auto& r : roles)
    if (std::find(uniq.begin(), uniq.end(), r) == uniq.end()) uniq.push_back(r);
  return uniq;
}

// ---- constant evaluation through the CPU backend --------------------------------

Result<std::vector<Tensor>> Session::Impl::EvaluateOnCpu(const Node& node) {
  TSR_ASSIGN_OR_RETURN(OpenDevice * cpu, OpenRole("cpu"));
  const tsr_backend_api* api = cpu->backend->api;
  auto view = GraphView::Build({&node});
  std::lock_guard<std::mutex> lock(cpu->mu);
  tsr_error err{};
  tsr_executable_t* exe = nullptr;
  int32_t rc = api->compile(cpu->dev, view->view(), nullptr, &exe, &err);
  if (rc != TSR_OK) return FromPluginError(rc, err, "constant folding");
  std::vector<Tensor> outs;
  std::vector<tsr_buffer_t*> bufs;
  std::vector<tsr_binding> bindings(view->values().size() + 1, tsr_binding{nullptr, 0});
  Status st;
  for (size_t i = 0; i < view->values().size() && st.ok(); ++i) {
    const Value* v = view->values()[i];
    if (v->is_constant()) continue;
    auto bytes = CheckedByteSize(*v->shape().AsInts(), v->dtype());
    if (!bytes.ok()) { st = bytes.status(); break; }
    tsr_buffer_t* b = nullptr;
    rc = api->buffer_alloc(cpu->dev, std::max<uint64_t>(*bytes, 1), 64, &b, &err);
    if (rc != TSR_OK) { st = FromPluginError(rc, err, "constant folding"); break; }
    bufs.push_back(b);
    bindings[i] = {b, 0};
  }
  tsr_stream_t* stream = nullptr;
  if (st.ok()) {
    rc = api->stream_create(cpu->dev, &stream, &err);
    if (rc != TSR_OK) st = FromPluginError(rc, err, "constant folding");
  }
  if (st.ok()) {
    rc = api->execute(exe, stream, bindings.data(), static_cast<uint32_t>(view->values().size()), &err);
    if (rc == TSR_OK) rc = api->stream_synchronize(stream, &err);
    if (rc != TSR_OK) st = FromPluginError(rc, err, "constant folding");
  }
  for (size_t o = 0; o < node.num_outputs() && st.ok(); ++o) {
    const Value* v = node.output(o);
    if (!v) { outs.emplace_back(); continue; }
    auto t = Tensor::Zeros(v->dtype(), *v->shape().AsInts());
    if (!t.ok()) { st = t.status(); break; }
    int idx = view->IndexOf(v);
    rc = api->copy_d2h(stream, t->mutable_raw(), bindings[idx].buffer, 0, t->nbytes(), &err);
    if (rc != TSR_OK) { st = FromPluginError(rc, err, "constant folding"); break; }
    outs.push_back(std::move(t).value());
  }
  if (stream) api->stream_destroy(stream);
  for (auto* b : bufs) api->buffer_free(b);
  api->executable_destroy(exe);
  if (!st.ok()) return st;
  return outs;
}

// ---- compilation ----------------------------------------------------------------

Result<std::unique_ptr<Variant>> Session::Impl::Compile(const std::map<std::string, std::vector<int64_t>>& shapes,
                                                       const FeedMap& feeds, std::set<std::string>* need) {
  auto t0 = Clock::now();
  std::unique_ptr<Graph> g = model->Clone();
  for (Value* in : g->RuntimeInputs()) {
    auto it = shapes.find(in->name());
    if (it == shapes.end()) return Internal("no shape bound for input '", in->name(), "'");
    in->set_type(TensorType{in->dtype(), Shape::FromInts(it->second)});
  }
  FeedMap specialized;
  for (const auto& n : value_inputs) {
    auto it = feeds.find(n);
    if (it == feeds.end()) return Internal("no value for specialized input '", n, "'");
    specialized[n] = it->second;
  }
  TSR_RETURN_IF_ERROR(SpecializeInputs(*g, specialized));
  TSR_ASSIGN_OR_RETURN(PassManager pm, BuildPipeline(opts.opt_level));
  PassContext ctx;
  ctx.opt_level = opts.opt_level;
  ctx.dump_after = opts.dump_after;
  if (!ctx.dump_after.empty() && ctx.dump_after != "all") {
    auto known = KnownPassNames();
    if (std::find(known.begin(), known.end(), ctx.dump_after) == known.end()) {
      std::string list;
      for (const auto& k : known) list += " " + k;
      return InvalidArgument("dump_after: unknown pass '", ctx.dump_after, "'; passes:", list);
    }
  }
  if (BackendRegistry::Get().Find("cpu") && BackendRegistry::Get().Find("cpu")->usable())
    ctx.evaluator = [this](const Node& n) { return EvaluateOnCpu(n); };
  TSR_RETURN_IF_ERROR(pm.Run(*g, ctx));
  need->clear();
  for (const auto& n : FindValueInputs(*g))
    if (!value_inputs.count(n)) need->insert(n);
  if (!need->empty()) return std::unique_ptr<Variant>();
  UniquifyNodeNames(*g);

  TSR_ASSIGN_OR_RETURN(std::vector<std::string> roles, ResolveRoles());
  std::vector<DeviceCandidate> cands;
  std::vector<DeviceRole> droles;
  for (const auto& role : roles) {
    auto od = OpenRole(role);
    if (!od.ok()) {
      // A listed device that is absent is an error in strict mode or when it
      // is the only one; otherwise the next device in the list takes over.
      if (opts.strict || roles.size() == 1) return od.status();
      continue;
    }
    OpenDevice* dev = *od;
    cands.push_back({role, [dev](const tsr_graph_view& view, std::vector<tsr_claim>* claims) -> Status {
                       tsr_error err{};
                       std::lock_guard<std::mutex> lock(dev->mu);
                       int32_t rc = dev->backend->api->claim(dev->dev, &view, claims->data(), &err);
                       return FromPluginError(rc, err, StrCat("device '", dev->role, "' claim"));
                     }});
    droles.push_back({role, dev->backend->name, dev->index});
    // hetero: the cost model's device numbers.
    if (dev->index < static_cast<int32_t>(dev->backend->devices.size())) {
      cands.back().peak_gflops = dev->backend->devices[dev->index].peak_gflops_f32;
      cands.back().memory_gbps = dev->backend->devices[dev->index].memory_gbps;
    }
  }
  if (cands.empty()) return Status(StatusCode::kNoDevice, "none of the requested devices is available");
  // ---- hetero: cost-model partitioning with placement overrides ----
  PartitionOptions popts;
  popts.strict = opts.strict;
  popts.placement = opts.placement;
  TSR_ASSIGN_OR_RETURN(Partition part, PartitionGraph(*g, cands, popts));
  std::map<std::string, std::string> placement_reasons;  // by node name: later passes may add nodes
  {
    size_t i = 0;
    for (const Node* n : g->nodes()) {
      if (i < part.node_reason.size()) placement_reasons[n->name()] = part.node_reason[i];
      ++i;
    }
  }
  // ---- end hetero ----
  // ---- precision: retype compute regions to bf16/f16 (compiler/precision.h) ----
  {
    TSR_ASSIGN_OR_RETURN(DType compute, ParsePrecision(opts.precision));
    if (compute != DType::kF32) {
      auto tp = Clock::now();
      const int64_t before = static_cast<int64_t>(g->num_nodes());
      PrecisionReport prep;
      TSR_ASSIGN_OR_RETURN(part, ApplyPrecision(*g, part, cands, compute, &prep));
      ctx.stats.push_back(PrecisionPassStat(prep, before, static_cast<int64_t>(g->num_nodes()), MsSince(tp)));
    }
  }
  // ---- end precision ----
  // ---- layouts: per-segment layout negotiation (compiler/assign_layouts.h) ----
  // At O2 and above; TESSERA_LAYOUTS=0 in the environment turns it off (for A/B measurements).
  if (opts.opt_level >= 2 && !(std::getenv("TESSERA_LAYOUTS") && std::string(std::getenv("TESSERA_LAYOUTS")) == "0")) {
    auto tl = Clock::now();
    std::vector<LayoutChooser> choosers;
    for (const auto& dr : droles) {
      auto od = OpenRole(dr.role);
      auto fn = od.ok() ? TSR_API_SLOT((*od)->backend->api, choose_layouts) : nullptr;
      if (!fn) {
        choosers.emplace_back();
        continue;
      }
      OpenDevice* dev = *od;
      choosers.push_back([dev, fn](const tsr_graph_view& view, std::vector<tsr_layout_choice>* vals,
                                   std::vector<uint8_t>* acc) -> Status {
        tsr_error err{};
        std::lock_guard<std::mutex> lock(dev->mu);
        int32_t rc = fn(dev->dev, &view, vals->data(), acc->data(), &err);
        return FromPluginError(rc, err, StrCat("device '", dev->role, "' choose_layouts"));
      });
    }
    TSR_ASSIGN_OR_RETURN(LayoutStats ls, AssignLayouts(*g, part, choosers));
    ctx.stats.push_back({"assign_layouts", ls.nodes_before, ls.nodes_after, ls.conversions, MsSince(tl)});
  }
  // ---- end layouts ----
  TSR_ASSIGN_OR_RETURN(Plan plan, LowerToPlan(std::move(g), part, droles, opts.max_alloc_bytes));
  plan.pass_stats = ctx.stats;
  plan.imported_nodes = static_cast<int64_t>(model->num_nodes());
  plan.placement_reasons = std::move(placement_reasons);  // hetero
  plan.placement_notes = part.notes;                       // hetero
  auto v = std::make_unique<Variant>();
  v->plan = std::move(plan);
  v->specialized.assign(value_inputs.begin(), value_inputs.end());
  TSR_RETURN_IF_ERROR(Prepare(*v));
  v->compile_ms = MsSince(t0);
  return v;
}

// Opens the plan's devices and compiles every segment on its backend.
Status Session::Impl::Prepare(Variant& v) {
  Plan& plan = v.plan;
  for (const auto& d : plan.devices) {
    TSR_ASSIGN_OR_RETURN(OpenDevice * od, OpenRole(d.role));
    if (od->backend->name != d.backend)
      return InvalidArgument("plan device '", d.role, "' needs backend '", d.backend, "', found '",
                             od->backend->name, "'");
    v.devices.push_back(od);
  }
  std::unordered_map<std::string, const Node*> by_name;
  for (const Node* n : plan.graph->nodes()) by_name[n->name()] = n;
  for (const Value* val : plan.graph->values()) v.values[val->name()] = val;

  // Per-device memory caps (config [inference.memory], option memory.<role>): the arena the plan needs on a
  // device must fit under its cap; the cap also reaches the backend as compile option "memory_cap".
  for (const auto& d : plan.devices) {
    auto cap = opts.memory_caps.find(d.role);
    if (cap != opts.memory_caps.end() && d.arena_bytes > static_cast<uint64_t>(cap->second))
      return Status(StatusCode::kOutOfMemory,
                    StrCat("device ", d.role, " needs an arena of ", d.arena_bytes, " bytes, over its memory cap of ",
                           cap->second, " bytes (option memory.", d.role, ")"));
  }
  // Options per device: that backend's own options from the config ([inference.backend.<name>]) come first
  // (plugins take the first match), then memory_cap, then the session-wide precision and threads.
  // Only options the user set are passed; backends apply their own defaults.
  struct DeviceOptions {
    std::vector<std::pair<std::string, std::string>> kv;
    std::vector<tsr_option> list;
    tsr_compile_options co{};
  };
  std::vector<DeviceOptions> dev_opts(plan.devices.size());
  for (size_t d = 0; d < plan.devices.size(); ++d) {
    auto& kv = dev_opts[d].kv;
    auto bo = opts.backend_options.find(plan.devices[d].backend);
    if (bo != opts.backend_options.end())
      for (const auto& [k, val] : bo->second) kv.emplace_back(k, val);
    auto cap = opts.memory_caps.find(plan.devices[d].role);
    if (cap != opts.memory_caps.end()) kv.emplace_back("memory_cap", std::to_string(cap->second));
    kv.emplace_back("precision", opts.precision);
    if (opts.threads > 0) kv.emplace_back("threads", std::to_string(opts.threads));
    for (const auto& [k, val] : kv) dev_opts[d].list.push_back({k.c_str(), val.c_str()});
    dev_opts[d].co = {sizeof(tsr_compile_options), static_cast<uint32_t>(dev_opts[d].list.size()),
                      dev_opts[d].list.data()};
  }

  for (const auto& seg : plan.segments) {
    std::vector<const Node*> nodes;
    for (const auto& name : seg.nodes) {
      auto it = by_name.find(name);
      if (it == by_name.end()) return InvalidArgument("plan segment names unknown node '", name, "'");
      nodes.push_back(it->second);
    }
    auto view = GraphView::Build(nodes);
    SegmentExec se;
    se.device = seg.device;
    se.dev = v.devices[seg.device];
    const tsr_backend_api* api = se.dev->backend->api;
    for (const Value* val : view->values()) {
      se.names.push_back(val->name());
      if (val->is_constant()) {
        se.offsets.push_back(-1);
        continue;
      }
      const PlanBuffer* b = plan.FindBuffer(val->name(), seg.device);
      if (!b) return InvalidArgument("plan has no buffer for value '", val->name(), "' on device ",
                                     plan.devices[seg.device].role);
      se.offsets.push_back(static_cast<int64_t>(b->offset));
    }
    tsr_error err{};
    std::lock_guard<std::mutex> lock(se.dev->mu);
    // ---- precision: a cached artifact from the plan file, else compile ----
    ArtifactTarget target{se.dev->backend->name, api, se.dev->dev, "", se.dev->role};
    if (se.dev->index < static_cast<int32_t>(se.dev->backend->devices.size()))
      target.device_name = se.dev->backend->devices[se.dev->index].name;
    const tsr_compile_options& co = dev_opts[seg.device].co;
    TSR_RETURN_IF_ERROR(CompileFromArtifact(v.artifacts, plan, static_cast<int32_t>(v.segments.size()), target,
                                            *view->view(), co, &se.exe, &v.artifact_report));
    int32_t rc = se.exe ? TSR_OK : api->compile(se.dev->dev, view->view(), &co, &se.exe, &err);
    // ---- end precision ----
    if (rc != TSR_OK)
      return FromPluginError(rc, err, StrCat("compiling a segment of ", nodes.size(), " node(s) on ", se.dev->role));
    auto scratch_fn = TSR_API_SLOT(api, executable_scratch_bytes);
    if (scratch_fn) {
      rc = scratch_fn(se.exe, &se.scratch_bytes, &err);
      if (rc != TSR_OK) {
        api->executable_destroy(se.exe);
        return FromPluginError(rc, err, "querying scratch size");
      }
    }
    v.segments.push_back(se);
  }
  BuildSchedule(v);  // hetero
  return Status::Ok();
}

// hetero: per-device issue orders. A send goes right after the segment that
// produces its value (so the source device is not held up by later work), a
// receive where the plan's transfer step is (before the first consumer).
// Deadlock-free: every wait is on a send at an earlier point of the plan's
// topological step order.
void Session::Impl::BuildSchedule(Variant& v) {
  const Plan& plan = v.plan;
  v.schedule.assign(plan.devices.size(), {});
  std::unordered_map<std::string, int32_t> seg_of_node;
  for (size_t s = 0; s < plan.segments.size(); ++s)
    for (const auto& n : plan.segments[s].nodes) seg_of_node[n] = static_cast<int32_t>(s);
  std::vector<std::vector<int32_t>> sends_after(plan.segments.size());
  std::vector<bool> placed(plan.transfers.size(), false);
  for (size_t t = 0; t < plan.transfers.size(); ++t) {
    auto vit = v.values.find(plan.transfers[t].value);
    if (vit == v.values.end() || !vit->second->producer()) continue;
    auto sit = seg_of_node.find(vit->second->producer()->name());
    if (sit == seg_of_node.end() || plan.segments[sit->second].device != plan.transfers[t].src_device) continue;
    sends_after[sit->second].push_back(static_cast<int32_t>(t));
  }
  for (const auto& step : plan.steps) {
    if (step.kind == PlanStep::kSegment) {
      v.schedule[plan.segments[step.index].device].push_back({DeviceOp::kSegment, step.index});
      for (int32_t t : sends_after[step.index]) {
        v.schedule[plan.transfers[t].src_device].push_back({DeviceOp::kSend, t});
        placed[t] = true;
      }
    } else {
      const PlanTransfer& tr = plan.transfers[step.index];
      if (!placed[step.index]) {
        v.schedule[tr.src_device].push_back({DeviceOp::kSend, step.index});
        placed[step.index] = true;
      }
      v.schedule[tr.dst_device].push_back({DeviceOp::kRecv, step.index});
    }
  }
}

Result<Variant*> Session::Impl::GetVariant(const std::map<std::string, std::vector<int64_t>>& shapes,
                                           const FeedMap* feeds, const std::vector<IoInfo>& inputs,
                                           bool* deferred) {
  std::lock_guard<std::mutex> lock(mu);
  static const FeedMap kNoFeeds;
  std::string key;
  for (;;) {
    if (!feeds && !value_inputs.empty()) {
      if (deferred) *deferred = true;
      return nullptr;
    }
    TSR_ASSIGN_OR_RETURN(std::string vkey, ValueKey(value_inputs, feeds ? *feeds : kNoFeeds));
    key = ShapeKey(shapes, inputs) + vkey;
    auto it = variants.find(key);
    if (it != variants.end()) return it->second.get();
    if (!model) break;
    if (variants.size() >= kMaxVariants) {
      std::string names;
      for (const auto& n : value_inputs) names += " " + n;
      return Unsupported("the session already holds ", kMaxVariants,
                               " compiled variants (one per set of input shapes",
                               value_inputs.empty() ? "" : " and values of the inputs" + names,
                               "); this model's shapes change on every run, which Tessera does not support yet");
    }
    std::set<std::string> need;
    TSR_ASSIGN_OR_RETURN(std::unique_ptr<Variant> v, Compile(shapes, feeds ? *feeds : kNoFeeds, &need));
    if (v) {
      v->key = key;
      Variant* raw = v.get();
      variants[key] = std::move(v);
      last_variant = raw;
      return raw;
    }
    // The graph needs the values of more inputs: specialize them and retry.
    value_inputs.insert(need.begin(), need.end());
  }
  // A plan has exactly one variant, compiled for fixed shapes.
  Variant* only = variants.begin()->second.get();
  std::string want;
  for (const Value* in : only->plan.graph->RuntimeInputs()) want += " " + in->name() + in->shape().ToString();
  return InvalidArgument("this plan was compiled for input shapes", want, "; got ", key,
                         " (compile the model again for these shapes)");
}

Result<ExecContext*> Session::Impl::Acquire(Variant& v) {
  {
    std::lock_guard<std::mutex> lock(v.pool_mu);
    if (!v.pool.empty()) {
      ExecContext* c = v.pool.back().release();
      v.pool.pop_back();
      return c;
    }
  }
  auto c = std::make_unique<ExecContext>();
  c->staging.resize(v.plan.transfers.size());
  c->transfer_events.assign(v.plan.transfers.size(), nullptr);
  c->seg_start.assign(v.segments.size(), nullptr);
  c->seg_end.assign(v.segments.size(), nullptr);
  c->origin.assign(v.devices.size(), nullptr);
  auto fail = [&](Status s) -> Status {
    v.DestroyContext(c.release());
    return s;
  };
  for (size_t d = 0; d < v.devices.size(); ++d) {
    OpenDevice* od = v.devices[d];
    const tsr_backend_api* api = od->backend->api;
    std::lock_guard<std::mutex> lock(od->mu);
    tsr_error err{};
    tsr_buffer_t* arena = nullptr;
    uint64_t bytes = std::max<uint64_t>(v.plan.devices[d].arena_bytes, 64);
    int32_t rc = api->buffer_alloc(od->dev, bytes, 64, &arena, &err);
    c->arenas.push_back(arena);
    c->streams.push_back(nullptr);
    if (rc != TSR_OK) return fail(FromPluginError(rc, err, StrCat("allocating the ", bytes, "-byte arena on ", od->role)));
    c->bytes += bytes;
    rc = api->stream_create(od->dev, &c->streams.back(), &err);
    if (rc != TSR_OK) return fail(FromPluginError(rc, err, StrCat("creating a stream on ", od->role)));
  }
  for (auto& s : v.segments) {
    tsr_buffer_t* b = nullptr;
    if (s.scratch_bytes > 0) {
      std::lock_guard<std::mutex> lock(s.dev->mu);
      tsr_error err{};
      int32_t rc = s.dev->backend->api->buffer_alloc(s.dev->dev, s.scratch_bytes, 64, &b, &err);
      if (rc != TSR_OK) {
        c->scratch.push_back(nullptr);
        return fail(FromPluginError(rc, err, "allocating segment scratch"));
      }
      c->bytes += s.scratch_bytes;
    }
    c->scratch.push_back(b);
  }
  uint64_t now = live_bytes += c->bytes;
  uint64_t prev = peak_bytes.load();
  while (now > prev && !peak_bytes.compare_exchange_weak(prev, now)) {
  }
  return c.release();
}

void Session::Impl::Release(Variant& v, ExecContext* c) {
  std::lock_guard<std::mutex> lock(v.pool_mu);
  v.pool.emplace_back(c);
}

// ---- hetero: multi-device execution ----------------------------------------------
//
// Each plan device gets an issuing thread (the calling thread issues for the
// first one) that walks Variant::schedule[d] on that device's stream:
//   segment: execute (events around it when tracing with device timing);
//   send:    copy_d2h into host staging, then event_record (or, for a backend
//            without events, stream_synchronize) and a host-side flag;
//   receive: wait for the flag (the send is issued), then wait for the send's
//            event and copy_h2d from staging. copy_h2d reads its host source
//            during the call (backend.h), so the d2h must be complete: the
//            DESTINATION device's thread calls event_synchronize. No other
//            device stops issuing, so independent segments on different
//            devices overlap.
// Every stream is synchronized once at the end.
Status Session::Impl::Execute(Variant& v, ExecContext* ctx, const FeedMap& feeds) {
  const Plan& plan = v.plan;
  const size_t nd = v.devices.size();
  Tracer* tr = tracer.get();
  const double run_start = tr ? tr->NowUs() : 0;
  const int64_t run_id = next_run_id++;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint8_t> sent(plan.transfers.size(), 0);
  bool failed = false;
  Status first_error;
  std::vector<double> seg_host_start(plan.segments.size(), -1), seg_host_end(plan.segments.size(), -1);
  std::vector<double> xfer_start(plan.transfers.size(), -1), xfer_end(plan.transfers.size(), -1);
  std::vector<double> origin_host(nd, 0);
  std::vector<uint8_t> device_timed(nd, 0);
  for (size_t t = 0; t < plan.transfers.size(); ++t) {
    const PlanBuffer* src = plan.FindBuffer(plan.transfers[t].value, plan.transfers[t].src_device);
    if (!src) return Internal("transfer of '", plan.transfers[t].value, "' has no source buffer");
    ctx->staging[t].resize(src->bytes);
  }

  auto run_device = [&](size_t d) -> Status {
    OpenDevice* od = v.devices[d];
    const tsr_backend_api* api = od->backend->api;
    tsr_stream_t* stream = ctx->streams[d];
    const std::string& role = plan.devices[d].role;
    tsr_error err{};
    const bool has_events = api->event_create && api->event_destroy && api->event_record && api->event_synchronize;
    auto elapsed = TSR_API_SLOT(api, event_elapsed_us);
    const bool timed = tr && has_events && elapsed;
    auto call = [&](int32_t rc, const std::string& what) -> Status {
      return rc == TSR_OK ? Status::Ok() : FromPluginError(rc, err, what);
    };
    auto make_event = [&](tsr_event_t** slot) -> Status {
      if (*slot) return Status::Ok();
      std::lock_guard<std::mutex> lock(od->mu);  // a call on the device object
      return call(api->event_create(od->dev, slot, &err), StrCat("creating an event on ", role));
    };
    if (timed) {
      TSR_RETURN_IF_ERROR(make_event(&ctx->origin[d]));
      TSR_RETURN_IF_ERROR(call(api->event_record(ctx->origin[d], stream, &err), "recording an event"));
      origin_host[d] = tr->NowUs();
      device_timed[d] = 1;
    }
    for (const auto& b : plan.buffers) {
      if (b.kind != BufferKind::kInput || b.device != static_cast<int32_t>(d)) continue;
      auto it = feeds.find(b.value);
      if (it == feeds.end()) continue;
      TSR_RETURN_IF_ERROR(call(api->copy_h2d(stream, ctx->arenas[d], b.offset, it->second->raw(),
                                             it->second->nbytes(), &err),
                               StrCat("copying input '", b.value, "' to ", role)));
    }
    std::vector<tsr_binding> bindings;
    for (const DeviceOp& op : v.schedule[d]) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (failed) return Status::Ok();  // another device failed; its error is reported
      }
      if (op.kind == DeviceOp::kSegment) {
        SegmentExec& se = v.segments[op.index];
        bindings.assign(se.offsets.size() + 1, tsr_binding{nullptr, 0});
        for (size_t i = 0; i < se.offsets.size(); ++i)
          if (se.offsets[i] >= 0) bindings[i] = {ctx->arenas[d], static_cast<uint64_t>(se.offsets[i])};
        if (v.state)
          for (const auto& [i, buf] : v.state->seg_bind[op.index]) bindings[i] = {buf, 0};
        bindings.back() = {ctx->scratch[op.index], 0};
        uint32_t nb = static_cast<uint32_t>(se.offsets.size() + (se.scratch_bytes ? 1 : 0));
        if (timed) {
          TSR_RETURN_IF_ERROR(make_event(&ctx->seg_start[op.index]));
          TSR_RETURN_IF_ERROR(make_event(&ctx->seg_end[op.index]));
          TSR_RETURN_IF_ERROR(call(api->event_record(ctx->seg_start[op.index], stream, &err), "recording an event"));
        }
        const double t0 = tr ? tr->NowUs() : 0;
        TSR_RETURN_IF_ERROR(call(api->execute(se.exe, stream, bindings.data(), nb, &err), StrCat("running on ", role)));
        if (timed) {
          TSR_RETURN_IF_ERROR(call(api->event_record(ctx->seg_end[op.index], stream, &err), "recording an event"));
        } else if (tr) {
          // Host timing: wait for this segment on this device's thread only.
          TSR_RETURN_IF_ERROR(call(api->stream_synchronize(stream, &err), StrCat("synchronizing ", role)));
        }
        if (tr) {
          seg_host_start[op.index] = t0;
          seg_host_end[op.index] = tr->NowUs();
        }
      } else if (op.kind == DeviceOp::kSend) {
        const PlanTransfer& t = plan.transfers[op.index];
        const PlanBuffer* src = plan.FindBuffer(t.value, t.src_device);
        if (tr) xfer_start[op.index] = tr->NowUs();
        std::vector<uint8_t>& host = ctx->staging[op.index];
        TSR_RETURN_IF_ERROR(call(api->copy_d2h(stream, host.data(), ctx->arenas[d], src->offset, host.size(), &err),
                                 StrCat("transfer of '", t.value, "': copying from ", role)));
        if (has_events) {
          TSR_RETURN_IF_ERROR(make_event(&ctx->transfer_events[op.index]));
          TSR_RETURN_IF_ERROR(call(api->event_record(ctx->transfer_events[op.index], stream, &err),
                                   "recording a transfer event"));
        } else {
          TSR_RETURN_IF_ERROR(call(api->stream_synchronize(stream, &err), StrCat("synchronizing ", role)));
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          sent[op.index] = 1;
        }
        cv.notify_all();
      } else {
        const PlanTransfer& t = plan.transfers[op.index];
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return sent[op.index] || failed; });
          if (failed) return Status::Ok();
        }
        if (tsr_event_t* ev = ctx->transfer_events[op.index]) {
          // copy_h2d reads its host source during the call (backend.h), so the
          // d2h that fills the staging buffer must have completed: the
          // DESTINATION device's thread waits for the send's event on the host.
          const tsr_backend_api* sapi = v.devices[t.src_device]->backend->api;
          TSR_RETURN_IF_ERROR(call(sapi->event_synchronize(ev, &err), StrCat("transfer of '", t.value,
                                                                             "': waiting for ",
                                                                             plan.devices[t.src_device].role)));
        }
        const PlanBuffer* dst = plan.FindBuffer(t.value, t.dst_device);
        if (!dst) return Internal("transfer of '", t.value, "' has no buffer on ", role);
        const std::vector<uint8_t>& host = ctx->staging[op.index];
        TSR_RETURN_IF_ERROR(call(api->copy_h2d(stream, ctx->arenas[d], dst->offset, host.data(),
                                               std::min<uint64_t>(host.size(), dst->bytes), &err),
                                 StrCat("transfer of '", t.value, "': copying to ", role)));
        if (tr) xfer_end[op.index] = tr->NowUs();
      }
    }
    return Status::Ok();
  };
  auto guarded = [&](size_t d) {
    Status st = run_device(d);
    if (!st.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed) first_error = st;
        failed = true;
      }
      cv.notify_all();
    }
  };

  // Devices with work: inputs or schedule entries.
  std::vector<size_t> active;
  for (size_t d = 0; d < nd; ++d) {
    bool has_inputs = false;
    for (const auto& b : plan.buffers)
      if (b.kind == BufferKind::kInput && b.device == static_cast<int32_t>(d) && feeds.count(b.value))
        has_inputs = true;
    if (has_inputs || !v.schedule[d].empty()) active.push_back(d);
  }
  // The calling thread issues for the first device once every other issuing
  // thread is running, so a busy machine does not serialize the devices by
  // starting a thread late.
  size_t started = 0;
  const size_t extra = active.empty() ? 0 : active.size() - 1;
  while (ctx->issuers.size() < extra) ctx->issuers.push_back(std::make_unique<IssueThread>());
  for (size_t k = 0; k < extra; ++k)
    ctx->issuers[k]->Start([&, d = active[k + 1]] {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++started;
      }
      cv.notify_all();
      guarded(d);
    });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return started == extra; });
  }
  if (!active.empty()) guarded(active[0]);
  for (size_t k = 0; k < extra; ++k) ctx->issuers[k]->Wait();

  tsr_error err{};
  Status st = first_error;
  for (size_t d = 0; d < nd; ++d) {
    const tsr_backend_api* api = v.devices[d]->backend->api;
    int32_t rc = api->stream_synchronize(ctx->streams[d], &err);  // also after a failure: staging must stay idle
    if (rc != TSR_OK && st.ok()) st = FromPluginError(rc, err, StrCat("synchronizing ", plan.devices[d].role));
  }
  if (!st.ok()) return st;

  uint64_t moved = 0;
  for (const auto& h : ctx->staging) moved += h.size();
  transfer_bytes += moved;
  transfer_count += static_cast<int64_t>(plan.transfers.size());
  last_run_transfer_bytes = moved;

  if (tr) {
    const double run_end = tr->NowUs();
    int32_t run_row = tr->Row("runs");
    tr->Add({StrCat("run ", run_id), "run", run_row, run_start, run_end - run_start, run_id,
             StrCat("{\"segments\":", plan.segments.size(), ",\"transfers\":", plan.transfers.size(),
                    ",\"transfer_bytes\":", moved, "}")});
    for (size_t s = 0; s < plan.segments.size(); ++s) {
      const int32_t d = plan.segments[s].device;
      double start = seg_host_start[s], dur = seg_host_end[s] - seg_host_start[s];
      std::string timing = "host";
      if (device_timed[d]) {
        const tsr_backend_api* api = v.devices[d]->backend->api;
        auto elapsed = TSR_API_SLOT(api, event_elapsed_us);
        double off = 0, len = 0;
        if (elapsed(ctx->origin[d], ctx->seg_start[s], &off, &err) == TSR_OK &&
            elapsed(ctx->seg_start[s], ctx->seg_end[s], &len, &err) == TSR_OK) {
          start = origin_host[d] + off;
          dur = len;
          timing = "device";
        }
      }
      const auto& nodes = plan.segments[s].nodes;
      json args = {{"segment", s}, {"device", plan.devices[d].role}, {"nodes", nodes.size()},
                   {"first_node", nodes.empty() ? "" : nodes.front()}, {"last_node", nodes.empty() ? "" : nodes.back()},
                   {"timing", timing}};
      tr->Add({StrCat("segment ", s, " (", nodes.size(), " nodes)"), "segment", tr->Row(plan.devices[d].role), start,
               dur, run_id, args.dump()});
    }
    const int32_t xrow = plan.transfers.empty() ? 0 : tr->Row("transfers");
    for (size_t t = 0; t < plan.transfers.size(); ++t) {
      const PlanTransfer& x = plan.transfers[t];
      json args = {{"value", x.value}, {"from", plan.devices[x.src_device].role},
                   {"to", plan.devices[x.dst_device].role}, {"bytes", ctx->staging[t].size()}};
      tr->Add({StrCat("transfer '", x.value, "'"), "transfer", xrow, xfer_start[t], xfer_end[t] - xfer_start[t],
               run_id, args.dump()});
    }
  }
  return Status::Ok();
}

// ---- Session ---------------------------------------------------------------------

Session::Session() : impl_(std::make_unique<Impl>()) {}
Session::~Session() = default;

Status Session::WriteTrace() {
  if (!impl_->tracer) return FailedPrecondition("tracing is off (set the 'trace' option or $TESSERA_TRACE)");
  return impl_->tracer->Write();
}

std::string Session::TraceJson() const { return impl_->tracer ? impl_->tracer->ToJson() : std::string(); }

Result<std::unique_ptr<Session>> Session::FromGraph(std::unique_ptr<Graph> model, const SessionOptions& opts) {
  auto s = std::unique_ptr<Session>(new Session());
  s->impl_->opts = opts;
  InitTrace(*s->impl_);  // hetero
  for (const Value* v : model->RuntimeInputs()) s->inputs_.push_back(InfoOf(v));
  for (const Value* v : model->outputs()) s->outputs_.push_back(InfoOf(v));
  s->impl_->model = std::move(model);
  // Compile now when every input shape is known (after dim bindings).
  std::map<std::string, std::vector<int64_t>> shapes;
  bool all_known = true;
  for (const IoInfo& in : s->inputs_) {
    if (in.dims.empty() && !s->impl_->model->FindValue(in.name)->shape().has_rank()) { all_known = false; break; }
    std::vector<int64_t> d = in.dims;
    for (size_t i = 0; i < d.size(); ++i) {
      if (d[i] >= 0) continue;
      auto it = opts.dims.find(in.dim_names[i]);
      if (it == opts.dims.end()) { all_known = false; break; }
      d[i] = it->second;
    }
    if (!all_known) break;
    shapes[in.name] = d;
  }
  // ---- hetero: devices = auto measures the candidate placements ----
  if (opts.devices.size() == 1 && opts.devices[0] == "auto") {
    if (all_known) {
      TSR_ASSIGN_OR_RETURN(AutoChoice c, ChooseAutoPlacement(*s->impl_->model, shapes, opts));
      s->impl_->opts.devices = c.devices;
      s->impl_->auto_json = c.ToJson();
    } else {
      s->impl_->auto_json =
          "{\"note\": \"not measured: input shapes are not known before the first run (bind symbolic dims with "
          "dim.<name>); using every usable device, accelerators first\"}";
    }
  }
  // ---- end hetero ----
  if (all_known) {
    bool deferred = false;  // the model needs input values: compile on the first run
    TSR_ASSIGN_OR_RETURN(Variant * v, s->impl_->GetVariant(shapes, nullptr, s->inputs_, &deferred));
    (void)v;
  }
  return s;
}

Result<std::unique_ptr<Session>> Session::FromPlan(LoadedPlan lp, const std::string& what,
                                                   const std::string& source, const SessionOptions& opts) {
  auto s = std::unique_ptr<Session>(new Session());
  s->impl_->opts = opts;
  InitTrace(*s->impl_);  // hetero
  s->impl_->source = source;
  // Options recorded in the plan apply unless the caller set them.
  if (opts.threads == 0 && lp.options.count("threads")) {
    Status ts = s->impl_->opts.Set("threads", lp.options["threads"]);
    if (!ts.ok()) return ts.WithContext(what + " records a bad option");
  }
  for (const Value* v : lp.plan.graph->RuntimeInputs()) s->inputs_.push_back(InfoOf(v));
  for (const Value* v : lp.plan.graph->outputs()) s->outputs_.push_back(InfoOf(v));
  auto v = std::make_unique<Variant>();
  v->plan = std::move(lp.plan);
  // precision: artifacts, and the precision the plan was compiled with (for the backends).
  v->artifacts = std::move(lp.artifacts);
  v->artifact_report.from_plan = true;
  v->artifact_report.present = static_cast<int64_t>(v->artifacts.size());
  if (lp.options.count("precision")) s->impl_->opts.precision = lp.options["precision"] == "bf16" ? "bf16" : "f32";
  auto t0 = Clock::now();
  TSR_RETURN_IF_ERROR(s->impl_->Prepare(*v).WithContext("loading " + what));
  v->compile_ms = MsSince(t0);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& in : s->inputs_) shapes[in.name] = in.dims;
  v->key = ShapeKey(shapes, s->inputs_);
  s->impl_->last_variant = v.get();
  s->impl_->variants[v->key] = std::move(v);
  return s;
}

Result<std::unique_ptr<Session>> Session::FromFile(const std::string& path, const SessionOptions& opts) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound("cannot open model file '", path, "'");
  char magic[8] = {};
  f.read(magic, 8);
  size_t got = static_cast<size_t>(f.gcount());
  f.close();
  if (LooksLikePlan(magic, got)) {
    TSR_ASSIGN_OR_RETURN(LoadedPlan lp, LoadPlanFile(path));
    return FromPlan(std::move(lp), StrCat("plan file '", path, "'"), path, opts);
  }
  TSR_ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(path, ImportOptions{opts.max_alloc_bytes, {}}));
  auto s = FromGraph(std::move(g), opts);
  if (s.ok()) (*s)->impl_->source = path;
  return s;
}

Result<std::unique_ptr<Session>> Session::FromBytes(const void* data, size_t size, const SessionOptions& opts) {
  if (!data && size) return InvalidArgument("model bytes are null");
  if (LooksLikePlan(data, size)) {
    TSR_ASSIGN_OR_RETURN(LoadedPlan lp, LoadPlanBytes(data, size));
    return FromPlan(std::move(lp), "plan bytes", "<bytes>", opts);
  }
  TSR_ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxBytes(data, size, "", ImportOptions{opts.max_alloc_bytes, {}}));
  auto s = FromGraph(std::move(g), opts);
  if (s.ok()) (*s)->impl_->source = "<bytes>";
  return s;
}

Status Session::Run(const std::vector<std::pair<std::string, const Tensor*>>& feeds,
                    const std::vector<std::string>& output_names, std::vector<Tensor>* results) {
  // Runs of a session with state are serialized.
  std::unique_lock<std::mutex> state_lock;
  const bool has_state = !impl_->slots.empty();
  if (has_state) state_lock = std::unique_lock<std::mutex>(impl_->state_mu);
  // Validate the feeds against the model's signature.
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : feeds) {
    if (impl_->slot_of_input.count(name))
      return InvalidArgument("input '", name, "' is session state (Session::DeclareState) and is not fed; set it with "
                             "SetState");
    auto it = std::find_if(inputs_.begin(), inputs_.end(), [&](const IoInfo& i) { return i.name == name; });
    if (it == inputs_.end())
      return InvalidArgument("unknown input '", name, "'; the model's inputs are: ", JoinNames(inputs_));
    if (!t) return InvalidArgument("input '", name, "' is null");
    if (!by_name.emplace(name, t).second) return InvalidArgument("input '", name, "' is given twice");
  }
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, std::pair<int64_t, std::string>> symbols;  // symbol -> (value, input)
  for (const IoInfo& in : inputs_) {
    auto sit = impl_->slot_of_input.find(in.name);
    if (sit != impl_->slot_of_input.end()) {
      shapes[in.name] = impl_->slots[sit->second].dims;
      continue;
    }
    auto it = by_name.find(in.name);
    std::string expect = StrCat(DTypeName(in.dtype), "[");
    for (size_t i = 0; i < in.dims.size(); ++i)
      expect += (i ? "," : "") + (in.dims[i] >= 0 ? std::to_string(in.dims[i]) : in.dim_names[i]);
    expect += "]";
    if (it == by_name.end()) return InvalidArgument("missing input '", in.name, "' (", expect, ")");
    const Tensor* t = it->second;
    if (t->dtype() != in.dtype)
      return InvalidArgument("input '", in.name, "' has dtype ", DTypeName(t->dtype()), ", the model expects ",
                             DTypeName(in.dtype));
    const bool rank_known = !in.dims.empty() || impl_->model == nullptr ||
                            impl_->model->FindValue(in.name)->shape().has_rank();
    if (rank_known && static_cast<size_t>(t->rank()) != in.dims.size())
      return InvalidArgument("input '", in.name, "' has shape ", DimsToString(t->dims()), " (rank ", t->rank(),
                             "), the model expects ", expect);
    for (size_t i = 0; rank_known && i < in.dims.size(); ++i) {
      if (in.dims[i] >= 0 && t->dims()[i] != in.dims[i])
        return InvalidArgument("input '", in.name, "' has shape ", DimsToString(t->dims()), ", the model expects ",
                               expect, ": dim ", i, " is ", t->dims()[i], ", expected ", in.dims[i]);
      if (in.dims[i] < 0 && in.dim_names[i] != "?") {
        auto [sit, fresh] = symbols.emplace(in.dim_names[i], std::make_pair(t->dims()[i], in.name));
        if (!fresh && sit->second.first != t->dims()[i])
          return InvalidArgument("dim '", in.dim_names[i], "' is ", sit->second.first, " in input '",
                                 sit->second.second, "' but ", t->dims()[i], " in input '", in.name, "'");
      }
    }
    shapes[in.name] = t->dims();
  }
  TSR_ASSIGN_OR_RETURN(Variant * v, impl_->GetVariant(shapes, &by_name, inputs_));

  // Which outputs.
  std::vector<size_t> out_idx;
  if (output_names.empty()) {
    for (size_t i = 0; i < outputs_.size(); ++i)
      if (!impl_->slot_of_output.count(outputs_[i].name)) out_idx.push_back(i);
  } else {
    for (const auto& n : output_names) {
      auto it = std::find_if(outputs_.begin(), outputs_.end(), [&](const IoInfo& o) { return o.name == n; });
      if (it == outputs_.end())
        return InvalidArgument("unknown output '", n, "'; the model's outputs are: ", JoinNames(outputs_));
      out_idx.push_back(static_cast<size_t>(it - outputs_.begin()));
    }
  }

  TSR_ASSIGN_OR_RETURN(ExecContext * ctx, impl_->Acquire(*v));
  Plan& plan = v->plan;
  Status st;
  tsr_error err{};
  auto check = [&](int32_t rc, const std::string& what) {
    if (rc != TSR_OK && st.ok()) st = FromPluginError(rc, err, what);
    return rc == TSR_OK;
  };
  if (has_state && !v->state) st = impl_->BindState(*v);
  if (st.ok() && has_state) st = impl_->StateBeforeRun(*v, ctx);
  if (st.ok()) st = impl_->Execute(*v, ctx, by_name);  // hetero: every device, transfers, tracing
  if (st.ok() && has_state) st = impl_->StateAfterRun(*v, ctx);
  // Outputs, by position in the plan graph's outputs.
  results->clear();
  for (size_t oi : out_idx) {
    if (!st.ok()) break;
    const Value* val = plan.graph->outputs()[oi];
    if (const Tensor* c = val->constant()) {
      auto t = Tensor::FromBytes(c->dtype(), c->dims(), c->raw(), c->nbytes());
      if (!t.ok()) { st = t.status(); break; }
      results->push_back(std::move(t).value());
      continue;
    }
    auto fit = by_name.find(val->name());
    if (val->is_graph_input() && fit != by_name.end()) {
      auto t = Tensor::FromBytes(fit->second->dtype(), fit->second->dims(), fit->second->raw(),
                                 fit->second->nbytes());
      if (!t.ok()) { st = t.status(); break; }
      results->push_back(std::move(t).value());
      continue;
    }
    if (v->state) {  // an in-place state output lives in its state buffer
      auto sit = impl_->slot_of_output.find(val->name());
      if (sit != impl_->slot_of_output.end() && v->state->mode[sit->second] == "in_place") {
        StateSlot& slot = impl_->slots[sit->second];
        const int32_t d = v->state->home[sit->second];
        auto t = Tensor::Zeros(slot.dtype, slot.dims);
        if (!t.ok()) { st = t.status(); break; }
        const tsr_backend_api* api = v->devices[d]->backend->api;
        if (check(api->copy_d2h(ctx->streams[d], t->mutable_raw(), v->state->buf[sit->second], 0, t->nbytes(), &err),
                  StrCat("reading state output '", val->name(), "'")) &&
            check(api->stream_synchronize(ctx->streams[d], &err), "synchronizing"))
          results->push_back(std::move(t).value());
        continue;
      }
    }
    const PlanBuffer* b = nullptr;
    for (const auto& pb : plan.buffers)
      if (pb.value == val->name() && (!b || pb.kind == BufferKind::kOutput)) b = &pb;
    if (!b) { st = Internal("output '", val->name(), "' has no buffer"); break; }
    auto t = Tensor::Zeros(val->dtype(), *val->shape().AsInts());
    if (!t.ok()) { st = t.status(); break; }
    const tsr_backend_api* api = v->devices[b->device]->backend->api;
    if (check(api->copy_d2h(ctx->streams[b->device], t->mutable_raw(), ctx->arenas[b->device], b->offset,
                            t->nbytes(), &err), StrCat("reading output '", val->name(), "'")) &&
        check(api->stream_synchronize(ctx->streams[b->device], &err), "synchronizing"))
      results->push_back(std::move(t).value());
  }
  impl_->Release(*v, ctx);
  impl_->runs++;
  if (!st.ok()) results->clear();
  return st;
}

Status Session::SavePlan(const std::string& path, bool with_artifacts) {
  Variant* v = nullptr;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    v = impl_->last_variant;
  }
  if (!v) {
    std::string syms;
    for (const auto& in : inputs_)
      for (const auto& n : in.dim_names)
        if (!n.empty()) syms += " " + n;
    return FailedPrecondition("the model has unbound symbolic dims (", syms,
                              " ); bind them (option dim.<name>, --dim NAME=N) or run once before saving a plan");
  }
  if (!v->specialized.empty()) {
    std::string names;
    for (const auto& n : v->specialized) names += " " + n;
    return FailedPrecondition("the compiled plan has the values of input(s)", names,
                              " built in (they set shapes or parameters); a plan file cannot hold that yet");
  }
  // ---- precision: the backends' compiled artifacts go into the file ----
  std::vector<PlanArtifact> artifacts;
  for (size_t i = 0; with_artifacts && i < v->segments.size(); ++i) {
    SegmentExec& se = v->segments[i];
    ArtifactTarget target{se.dev->backend->name, se.dev->backend->api, se.dev->dev, "", se.dev->role};
    if (se.dev->index < static_cast<int32_t>(se.dev->backend->devices.size()))
      target.device_name = se.dev->backend->devices[se.dev->index].name;
    PlanArtifact a;
    std::lock_guard<std::mutex> lock(se.dev->mu);
    TSR_ASSIGN_OR_RETURN(bool made, SerializeArtifact(v->plan, static_cast<int32_t>(i), target, se.exe, &a));
    if (made) artifacts.push_back(std::move(a));
  }
  return SavePlanFile(v->plan, impl_->opts.ToMap(), path, &artifacts);
  // ---- end precision ----
}

Result<std::string> Session::DescribeJson() {
  json j;
  j["source"] = impl_->source;
  auto io = [](const std::vector<IoInfo>& v) {
    json a = json::array();
    for (const auto& i : v) {
      json dims = json::array();
      for (size_t k = 0; k < i.dims.size(); ++k) {
        if (i.dims[k] >= 0) dims.push_back(i.dims[k]);
        else dims.push_back(i.dim_names[k]);
      }
      a.push_back({{"name", i.name}, {"dtype", DTypeName(i.dtype)}, {"shape", dims}});
    }
    return a;
  };
  j["inputs"] = io(inputs_);
  j["outputs"] = io(outputs_);
  std::lock_guard<std::mutex> lock(impl_->mu);
  Variant* v = impl_->last_variant;
  j["compiled"] = v != nullptr;
  if (impl_->model) j["imported_nodes"] = impl_->model->num_nodes();
  if (!v) {
    json ops = json::object();
    for (const Node* n : impl_->model->nodes()) ops[n->QualifiedOp()] = ops.value(n->QualifiedOp(), 0) + 1;
    j["op_counts"] = ops;
    j["note"] = "not compiled yet: symbolic input dims are unbound (bind them with dim.<name>)";
    return j.dump(2);
  }
  const Plan& p = v->plan;
  j["compile_ms"] = v->compile_ms;
  j["imported_nodes"] = p.imported_nodes;
  j["optimized_nodes"] = p.graph->num_nodes();
  std::unordered_map<std::string, int32_t> node_dev;
  for (const auto& s : p.segments)
    for (const auto& n : s.nodes) node_dev[n] = s.device;
  json ops = json::object(), nodes = json::array(), placement = json::object();
  for (const Node* n : p.graph->nodes()) {
    ops[n->QualifiedOp()] = ops.value(n->QualifiedOp(), 0) + 1;
    json ins = json::array(), outs = json::array();
    for (const Value* in : n->inputs()) ins.push_back(in ? in->type().ToString() : "");
    for (const Value* o : n->outputs()) outs.push_back(o ? o->type().ToString() : "");
    std::string dev = p.devices[node_dev[n->name()]].role;
    json nj = {{"name", n->name()}, {"op", n->QualifiedOp()}, {"device", dev}, {"inputs", ins},
               {"outputs", outs}};
    auto rit = p.placement_reasons.find(n->name());  // hetero
    nj["reason"] = rit != p.placement_reasons.end() ? rit->second
                   : p.placement_reasons.empty()     ? "recorded in the plan file"
                                                     : "added by a pass after partitioning";
    nodes.push_back(std::move(nj));
    placement[dev] = placement.value(dev, 0) + 1;
  }
  j["op_counts"] = ops;
  j["nodes"] = nodes;
  j["placement"] = placement;
  json devs = json::array();
  for (size_t d = 0; d < p.devices.size(); ++d) {
    const auto& pd = p.devices[d];
    json dj = {{"role", pd.role}, {"backend", pd.backend}, {"arena_bytes", pd.arena_bytes},
               {"arena_lower_bound", pd.arena_lower_bound}};
    if (d < v->devices.size()) {
      const auto& props = v->devices[d]->backend->devices;
      if (v->devices[d]->index < static_cast<int32_t>(props.size())) dj["name"] = props[v->devices[d]->index].name;
    }
    devs.push_back(dj);
  }
  j["devices"] = devs;
  json segs = json::array();
  for (const auto& s : p.segments)
    segs.push_back({{"device", p.devices[s.device].role}, {"nodes", s.nodes.size()}});
  j["segments"] = segs;
  json trs = json::array();
  uint64_t transfer_bytes = 0;
  for (const auto& t : p.transfers) {
    const PlanBuffer* b = p.FindBuffer(t.value, t.src_device);
    uint64_t bytes = b ? b->bytes : 0;
    transfer_bytes += bytes;
    trs.push_back({{"value", t.value}, {"from", p.devices[t.src_device].role}, {"to", p.devices[t.dst_device].role},
                   {"bytes", bytes}});
  }
  j["transfers"] = trs;
  j["transfer_bytes_per_run"] = transfer_bytes;
  // hetero: partitioner notes, auto placement, tracing.
  j["placement_notes"] = p.placement_notes;
  if (!impl_->auto_json.empty()) j["auto"] = json::parse(impl_->auto_json, nullptr, false);
  if (impl_->tracer) j["trace"] = impl_->tracer->path();
  uint64_t weights = 0;
  for (const Value* val : p.graph->values())
    if (const Tensor* t = val->constant()) weights += t->nbytes();
  j["memory"] = {{"weights_bytes", weights}, {"buffers", p.buffers.size()}};
  json passes = json::array();
  for (const auto& s : p.pass_stats)
    passes.push_back({{"pass", s.pass}, {"nodes_before", s.nodes_before}, {"nodes_after", s.nodes_after},
                      {"changes", s.changes}, {"ms", s.millis}});
  j["passes"] = passes;
  if (v->state) {
    json sj = json::array();
    for (size_t k = 0; k < impl_->slots.size(); ++k)
      sj.push_back({{"input", impl_->slots[k].input}, {"output", impl_->slots[k].output},
                    {"mode", v->state->mode[k]},
                    {"device", v->state->home[k] >= 0 ? p.devices[v->state->home[k]].role : std::string()},
                    {"bytes", impl_->slots[k].bytes}});
    j["state"] = sj;
  }
  // precision: cached compiled artifacts (plan files only).
  if (v->artifact_report.from_plan) {
    const ArtifactReport& ar = v->artifact_report;
    j["artifacts"] = {{"present", ar.present}, {"used", ar.used}, {"ignored", ar.ignored}, {"notes", ar.notes}};
  }
  return j.dump(2);
}

std::string Session::StatsJson() const {
  json j = {{"runs", impl_->runs.load()}, {"peak_memory_bytes", impl_->peak_bytes.load()},
            {"variants", impl_->variants.size()},
            // hetero: cross-device traffic, over all runs and in the last run.
            {"transfers", impl_->transfer_count.load()}, {"transfer_bytes", impl_->transfer_bytes.load()},
            {"last_run_transfer_bytes", impl_->last_run_transfer_bytes.load()}};
  if (!impl_->slots.empty()) {
    // How the state of the last compiled variant is updated.
    std::lock_guard<std::mutex> lock(impl_->state_mu);
    Variant* v = impl_->last_variant;
    json sj = json::object(), dj = json::object();
    uint64_t bytes = 0;
    for (size_t k = 0; k < impl_->slots.size(); ++k) {
      sj[impl_->slots[k].input] = v && v->state ? v->state->mode[k] : "unbound";
      dj[impl_->slots[k].input] = impl_->slots[k].home ? impl_->slots[k].home->role : "host";
      bytes += impl_->slots[k].bytes;
    }
    j["state"] = sj;
    j["state_device"] = dj;  // where each value lives now
    j["state_bytes"] = bytes;
  }
  return j.dump();
}

}  // namespace tessera

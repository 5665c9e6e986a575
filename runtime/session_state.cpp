// Session state (Session::DeclareState / SetState / GetState): device
// buffers that persist across runs, bound in place of arena slots, and the
// per-variant decision of where each value lives and whether its update may be
// written in place (runtime/session.h says the contract).
#include <algorithm>
#include <cstdlib>
#include <set>
#include <unordered_map>

#include "runtime/session_impl.h"

namespace tessera {
using namespace session_internal;

// ---- state ---------------------------------------------------------------------

namespace {
// Ops whose kernels may write an output over the buffer of an input they read
// (element i read before it is written): the optimizer updates and
// BatchNormalization's running statistics (ops_training.cpp, backend.h), and
// the elementwise ops lower.cpp also updates in place.
const std::set<std::string> kInPlaceStateWriters = {
    "tessera.SGDUpdate", "tessera.AdamWUpdate", "BatchNormalization", "Add", "Sub", "Mul", "Div", "Neg", "Relu",
    "Sigmoid", "Tanh", "Exp", "Abs", "Sqrt", "Clip", "tessera.FusedElementwise"};
}  // namespace

Result<tsr_stream_t*> Session::Impl::StateStream(OpenDevice* od) {
  auto it = state_streams.find(od);
  if (it != state_streams.end()) return it->second;
  tsr_error err{};
  tsr_stream_t* st = nullptr;
  std::lock_guard<std::mutex> lock(od->mu);
  int32_t rc = od->backend->api->stream_create(od->dev, &st, &err);
  if (rc != TSR_OK) return FromPluginError(rc, err, StrCat("creating a state stream on ", od->role));
  state_streams[od] = st;
  return st;
}

Result<tsr_buffer_t*> Session::Impl::StateBuffer(StateSlot& slot, OpenDevice* od) {
  auto it = slot.bufs.find(od);
  if (it != slot.bufs.end()) return it->second;
  tsr_error err{};
  tsr_buffer_t* b = nullptr;
  std::lock_guard<std::mutex> lock(od->mu);
  int32_t rc = od->backend->api->buffer_alloc(od->dev, std::max<uint64_t>(slot.bytes, 1), 64, &b, &err);
  if (rc != TSR_OK)
    return FromPluginError(rc, err, StrCat("allocating the state buffer of '", slot.input, "' on ", od->role));
  slot.bufs[od] = b;
  uint64_t now = live_bytes += std::max<uint64_t>(slot.bytes, 1);
  uint64_t prev = peak_bytes.load();
  while (now > prev && !peak_bytes.compare_exchange_weak(prev, now)) {
  }
  return b;
}

Result<Tensor> Session::Impl::ReadState(StateSlot& slot) {
  if (!slot.home) {
    if (slot.host.dtype() == slot.dtype && slot.host.dims() == slot.dims)
      return Tensor::FromBytes(slot.dtype, slot.dims, slot.host.raw(), slot.host.nbytes());
    return Tensor::Zeros(slot.dtype, slot.dims);
  }
  TSR_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(slot.dtype, slot.dims));
  TSR_ASSIGN_OR_RETURN(tsr_stream_t * st, StateStream(slot.home));
  const tsr_backend_api* api = slot.home->backend->api;
  tsr_error err{};
  int32_t rc = api->copy_d2h(st, t.mutable_raw(), slot.bufs.at(slot.home), 0, t.nbytes(), &err);
  if (rc == TSR_OK) rc = api->stream_synchronize(st, &err);
  if (rc != TSR_OK)
    return FromPluginError(rc, err, StrCat("reading state '", slot.input, "' from ", slot.home->role));
  return t;
}

Status Session::Impl::MoveState(StateSlot& slot, OpenDevice* od) {
  if (slot.home == od) return Status::Ok();
  TSR_ASSIGN_OR_RETURN(Tensor value, ReadState(slot));
  TSR_ASSIGN_OR_RETURN(tsr_buffer_t * b, StateBuffer(slot, od));
  TSR_ASSIGN_OR_RETURN(tsr_stream_t * st, StateStream(od));
  const tsr_backend_api* api = od->backend->api;
  tsr_error err{};
  int32_t rc = api->copy_h2d(st, b, 0, value.raw(), value.nbytes(), &err);
  if (rc == TSR_OK) rc = api->stream_synchronize(st, &err);
  if (rc != TSR_OK) return FromPluginError(rc, err, StrCat("uploading state '", slot.input, "' to ", od->role));
  slot.home = od;
  slot.host = Tensor();
  return Status::Ok();
}

// Decides, for one variant, where each state value lives and whether its
// output may be written in place (see Session::DeclareState).
Status Session::Impl::BindState(Variant& v) {
  const Plan& plan = v.plan;
  auto vs = std::make_unique<VariantState>();
  const size_t n = slots.size();
  vs->home.assign(n, -1);
  vs->mode.assign(n, "unused");
  vs->buf.assign(n, nullptr);
  vs->seg_bind.assign(v.segments.size(), {});
  // Issue position of every node on its device.
  std::unordered_map<std::string, std::pair<int32_t, int64_t>> pos;  // node -> (device, position)
  for (size_t d = 0; d < v.schedule.size(); ++d) {
    int64_t p = 0;
    for (const DeviceOp& op : v.schedule[d])
      if (op.kind == DeviceOp::kSegment)
        for (const auto& name : plan.segments[op.index].nodes) pos[name] = {static_cast<int32_t>(d), p++};
  }
  for (size_t k = 0; k < n; ++k) {
    StateSlot& slot = slots[k];
    auto xit = v.values.find(slot.input);
    if (xit == v.values.end()) continue;  // optimized away: nothing reads it
    const Value* x = xit->second;
    if (x->dtype() != slot.dtype || !x->shape().is_static() || *x->shape().AsInts() != slot.dims)
      return Internal("state input '", slot.input, "' has type ", x->type().ToString(), " in the compiled plan");
    int32_t home = -1;
    const Node* writer = nullptr;
    if (!slot.output.empty()) {
      auto yit = v.values.find(slot.output);
      if (yit == v.values.end() || !yit->second->producer() || !pos.count(yit->second->producer()->name()))
        return Unsupported("state output '", slot.output, "' is not computed by a node of the compiled plan (it is a ",
                           "constant or an input after optimization); it cannot update state '", slot.input, "'");
      writer = yit->second->producer();
      home = pos[writer->name()].first;
      const PlanBuffer* yb = plan.FindBuffer(slot.output, home);
      if (!yb || !yb->layout.empty() || yb->bytes < slot.bytes)
        return Unsupported("state output '", slot.output, "' is stored in layout '", yb ? yb->layout : "?",
                           "' on ", plan.devices[home].role, "; state needs the plain layout");
    } else {
      for (const auto& b : plan.buffers)
        if (b.value == slot.input && b.kind == BufferKind::kInput && (home < 0 || b.device < home)) home = b.device;
      if (home < 0) continue;
    }
    vs->home[k] = home;
    TSR_ASSIGN_OR_RETURN(vs->buf[k], StateBuffer(slot, v.devices[home]));
    bool in_place = false;
    if (writer) {
      const auto wpos = pos[writer->name()].second;
      bool writer_reads = false;
      in_place = true;
      for (const Node* node : plan.graph->nodes()) {
        bool reads = false;
        for (const Value* in : node->inputs()) reads = reads || in == x;
        if (!reads) continue;
        if (node == writer) {
          writer_reads = true;
          continue;
        }
        auto pit = pos.find(node->name());
        if (pit == pos.end() || (pit->second.first == home && pit->second.second > wpos)) in_place = false;
      }
      if (writer_reads && !kInPlaceStateWriters.count(writer->QualifiedOp())) in_place = false;
      for (const auto& t : plan.transfers)
        if (t.value == slot.output) in_place = false;  // sends read the arena
      // TESSERA_STATE_IN_PLACE=0 turns in-place state updates off (A/B checks).
      if (const char* e = std::getenv("TESSERA_STATE_IN_PLACE"); e && std::string(e) == "0") in_place = false;
      vs->mode[k] = in_place ? "in_place" : "copy";
      if (!in_place) vs->copy_back.push_back(static_cast<int32_t>(k));
    } else {
      vs->mode[k] = "read_only";
    }
    for (size_t s = 0; s < v.segments.size(); ++s) {
      if (v.segments[s].device != home) continue;
      const auto& names = v.segments[s].names;
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == slot.input || (in_place && names[i] == slot.output))
          vs->seg_bind[s].push_back({static_cast<uint32_t>(i), vs->buf[k]});
    }
    for (const auto& b : plan.buffers)
      if (b.value == slot.input && b.kind == BufferKind::kInput && b.device != home)
        vs->pre_copies.push_back({static_cast<int32_t>(k), b.device});
  }
  v.state = std::move(vs);
  return Status::Ok();
}

Status Session::Impl::StateBeforeRun(Variant& v, ExecContext* ctx) {
  VariantState& vs = *v.state;
  for (size_t k = 0; k < slots.size(); ++k)
    if (vs.home[k] >= 0) TSR_RETURN_IF_ERROR(MoveState(slots[k], v.devices[vs.home[k]]));
  tsr_error err{};
  for (const auto& [k, d] : vs.pre_copies) {
    const int32_t h = vs.home[k];
    const PlanBuffer* dst = v.plan.FindBuffer(slots[k].input, d);
    if (!dst) return Internal("state input '", slots[k].input, "' has no buffer on ", v.plan.devices[d].role);
    std::vector<uint8_t> host(slots[k].bytes);
    const tsr_backend_api* hapi = v.devices[h]->backend->api;
    const tsr_backend_api* dapi = v.devices[d]->backend->api;
    int32_t rc = hapi->copy_d2h(ctx->streams[h], host.data(), vs.buf[k], 0, host.size(), &err);
    if (rc == TSR_OK) rc = hapi->stream_synchronize(ctx->streams[h], &err);
    if (rc == TSR_OK) rc = dapi->copy_h2d(ctx->streams[d], ctx->arenas[d], dst->offset, host.data(), host.size(), &err);
    if (rc != TSR_OK)
      return FromPluginError(rc, err, StrCat("copying state '", slots[k].input, "' from ", v.plan.devices[h].role,
                                             " to ", v.plan.devices[d].role));
  }
  return Status::Ok();
}

Status Session::Impl::StateAfterRun(Variant& v, ExecContext* ctx) {
  VariantState& vs = *v.state;
  tsr_error err{};
  for (int32_t k : vs.copy_back) {
    const int32_t h = vs.home[k];
    const PlanBuffer* src = v.plan.FindBuffer(slots[k].output, h);
    if (!src) return Internal("state output '", slots[k].output, "' has no buffer");
    const tsr_backend_api* api = v.devices[h]->backend->api;
    int32_t rc = TSR_OK;
    if (api->copy_d2d) {
      rc = api->copy_d2d(ctx->streams[h], vs.buf[k], 0, ctx->arenas[h], src->offset, slots[k].bytes, &err);
    } else {
      std::vector<uint8_t> host(slots[k].bytes);
      rc = api->copy_d2h(ctx->streams[h], host.data(), ctx->arenas[h], src->offset, host.size(), &err);
      if (rc == TSR_OK) rc = api->stream_synchronize(ctx->streams[h], &err);
      if (rc == TSR_OK) rc = api->copy_h2d(ctx->streams[h], vs.buf[k], 0, host.data(), host.size(), &err);
    }
    if (rc != TSR_OK) return FromPluginError(rc, err, StrCat("updating state '", slots[k].input, "'"));
  }
  for (size_t d = 0; d < v.devices.size(); ++d) {
    int32_t rc = v.devices[d]->backend->api->stream_synchronize(ctx->streams[d], &err);
    if (rc != TSR_OK) return FromPluginError(rc, err, StrCat("synchronizing ", v.plan.devices[d].role));
  }
  return Status::Ok();
}

Status Session::DeclareState(const std::vector<StateSpec>& state) {
  std::lock_guard<std::mutex> lock(impl_->state_mu);
  if (impl_->runs.load() > 0) return FailedPrecondition("DeclareState must be called before the first run");
  if (!impl_->slots.empty()) return FailedPrecondition("state is already declared for this session");
  std::vector<StateSlot> slots;
  std::map<std::string, int32_t> by_in, by_out;
  auto find = [](const std::vector<IoInfo>& v, const std::string& n) -> const IoInfo* {
    for (const auto& i : v)
      if (i.name == n) return &i;
    return nullptr;
  };
  for (const auto& spec : state) {
    const IoInfo* in = find(inputs_, spec.input);
    if (!in) return InvalidArgument("state input '", spec.input, "' is not an input of the model; its inputs are: ",
                                    JoinNames(inputs_));
    if (in->dtype == DType::kString || in->dtype == DType::kUndefined)
      return InvalidArgument("state input '", spec.input, "' has dtype ", DTypeName(in->dtype),
                             "; state must be numeric");
    for (int64_t d : in->dims)
      if (d < 0)
        return InvalidArgument("state input '", spec.input, "' has a symbolic shape ", DimsToString(in->dims),
                               "; state needs a static shape");
    if (impl_->model && !impl_->model->FindValue(spec.input)->shape().has_rank())
      return InvalidArgument("state input '", spec.input, "' has an unknown rank; state needs a static shape");
    if (!by_in.emplace(spec.input, static_cast<int32_t>(slots.size())).second)
      return InvalidArgument("state input '", spec.input, "' is declared twice");
    if (!spec.output.empty()) {
      const IoInfo* out = find(outputs_, spec.output);
      if (!out) return InvalidArgument("state output '", spec.output, "' (for input '", spec.input,
                                       "') is not an output of the model; its outputs are: ", JoinNames(outputs_));
      bool same = out->dtype == in->dtype && out->dims.size() == in->dims.size();
      for (size_t i = 0; same && i < out->dims.size(); ++i) same = out->dims[i] < 0 || out->dims[i] == in->dims[i];
      if (!same)
        return InvalidArgument("state output '", spec.output, "' has type ", DTypeName(out->dtype),
                               DimsToString(out->dims), " but its input '", spec.input, "' has ", DTypeName(in->dtype),
                               DimsToString(in->dims));
      if (!by_out.emplace(spec.output, static_cast<int32_t>(slots.size())).second)
        return InvalidArgument("state output '", spec.output, "' is declared twice");
    }
    StateSlot slot;
    slot.input = spec.input;
    slot.output = spec.output;
    slot.dtype = in->dtype;
    slot.dims = in->dims;
    TSR_ASSIGN_OR_RETURN(int64_t bytes, CheckedByteSize(in->dims, in->dtype));
    slot.bytes = static_cast<uint64_t>(bytes);
    slots.push_back(std::move(slot));
  }
  impl_->slots = std::move(slots);
  impl_->slot_of_input = std::move(by_in);
  impl_->slot_of_output = std::move(by_out);
  state_ = state;
  return Status::Ok();
}

Status Session::SetState(const std::string& input, const Tensor& value) {
  std::lock_guard<std::mutex> lock(impl_->state_mu);
  auto it = impl_->slot_of_input.find(input);
  if (it == impl_->slot_of_input.end()) return NotFound("'", input, "' is not declared state of this session");
  StateSlot& slot = impl_->slots[it->second];
  if (value.dtype() != slot.dtype || value.dims() != slot.dims)
    return InvalidArgument("state '", input, "' is ", DTypeName(slot.dtype), DimsToString(slot.dims), ", got ",
                           DTypeName(value.dtype()), DimsToString(value.dims()));
  if (!slot.home) {
    TSR_ASSIGN_OR_RETURN(slot.host, Tensor::FromBytes(value.dtype(), value.dims(), value.raw(), value.nbytes()));
    return Status::Ok();
  }
  TSR_ASSIGN_OR_RETURN(tsr_stream_t * st, impl_->StateStream(slot.home));
  const tsr_backend_api* api = slot.home->backend->api;
  tsr_error err{};
  int32_t rc = api->copy_h2d(st, slot.bufs.at(slot.home), 0, value.raw(), value.nbytes(), &err);
  if (rc == TSR_OK) rc = api->stream_synchronize(st, &err);
  if (rc != TSR_OK) return FromPluginError(rc, err, StrCat("uploading state '", input, "' to ", slot.home->role));
  return Status::Ok();
}

Result<Tensor> Session::GetState(const std::string& input) {
  std::lock_guard<std::mutex> lock(impl_->state_mu);
  auto it = impl_->slot_of_input.find(input);
  if (it == impl_->slot_of_input.end()) return NotFound("'", input, "' is not declared state of this session");
  return impl_->ReadState(impl_->slots[it->second]);
}

}  // namespace tessera

// Memory layouts on the CPU backend: the name <-> oneDNN descriptor mapping,
// the tessera.LayoutConvert kernel (a oneDNN reorder) and the backend's answer
// to `choose_layouts` (layouts.h).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/dnnl_kernel.h"
#include "backends/cpu/layouts.h"

namespace tessera::cpu {

using namespace dnnlk;

namespace {

using tag = memory::format_tag;

struct LayoutTag {
  const char* name;
  int rank;
  tag t;
};

const LayoutTag kLayouts[] = {
    {"nwc", 3, tag::nwc},         {"nhwc", 4, tag::nhwc},         {"ndhwc", 5, tag::ndhwc},
    {"nCw16c", 3, tag::nCw16c},   {"nChw16c", 4, tag::nChw16c},   {"nCdhw16c", 5, tag::nCdhw16c},
    {"nCw8c", 3, tag::nCw8c},     {"nChw8c", 4, tag::nChw8c},     {"nCdhw8c", 5, tag::nCdhw8c},
};

std::string LayoutEntry(const NodeArgs& a, const char* attr, size_t i) {
  const tsr_attr_view* v = a.attrs().Find(attr);
  if (!v || v->type != TSR_ATTR_STRINGS || i >= v->count || !v->strings[i]) return "";
  return v->strings[i];
}

Err DescFor(const NodeArgs& a, const TensorArg* t, const std::string& layout, memory::data_type dt,
            const char* what, size_t i, memory::desc* out) {
  if (!t) return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: %s %zu is missing", a.Describe().c_str(), what, i);
  if (!LayoutDesc(t->dims, dt, layout, out))
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: %s %zu has layout '%s', which the CPU backend does not know for rank %zu",
                   a.Describe().c_str(), what, i, layout.c_str(), t->dims.size());
  return Err::Ok();
}

// tessera.LayoutConvert(X) -> Y: the same tensor, rearranged from layout
// `from` to layout `to` ("" = plain) by a oneDNN reorder.
Err CreateLayoutConvert(const NodeArgs& a, std::unique_ptr<Kernel>* out) {
  Err e = RequireInput(a, 0, "X");
  if (e.ok()) e = RequireOutput(a);
  if (!e.ok()) return e;
  const TensorArg& X = *a.inputs[0];
  const TensorArg& Y = *a.outputs[0];
  if (X.dtype != Y.dtype || X.dims != Y.dims)
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: Y (%s %s) must have X's type (%s %s)", a.Describe().c_str(),
                   plugin::DTypeName(Y.dtype), DimsStr(Y.dims).c_str(), plugin::DTypeName(X.dtype),
                   DimsStr(X.dims).c_str());
  const memory::data_type dt = DnnlType(X.dtype);
  if (dt == memory::data_type::undef)
    return MakeErr(TSR_ERR_UNSUPPORTED, "%s: dtype %s has no oneDNN reorder", a.Describe().c_str(),
                   plugin::DTypeName(X.dtype));
  const std::string from = a.attrs().String("from", ""), to = a.attrs().String("to", "");
  // The buffers' layouts are the attributes; _tsr_in/out_layouts, when
  // present, must agree (they are what the compiler recorded).
  const std::string in_l = InputLayout(a, 0), out_l = OutputLayout(a, 0);
  if ((a.attrs().Has(kInLayoutsAttrName) && in_l != from) || (a.attrs().Has(kOutLayoutsAttrName) && out_l != to))
    return MakeErr(TSR_ERR_INVALID_ARGUMENT, "%s: from='%s' to='%s' disagree with the recorded layouts '%s' -> '%s'",
                   a.Describe().c_str(), from.c_str(), to.c_str(), in_l.c_str(), out_l.c_str());
  memory::desc from_md, to_md;
  e = DescFor(a, &X, from, dt, "input", 0, &from_md);
  if (e.ok()) e = DescFor(a, &Y, to, dt, "output", 0, &to_md);
  if (!e.ok()) return e;
  if (Y.numel == 0) {
    *out = NoopKernel();
    return Err::Ok();
  }
  return GuardDnnl(a, [&]() -> Err {
    const dnnl::engine& eng = du::Engine();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::reorder::primitive_desc pd(eng, from_md, eng, to_md, attr);
    auto k = std::make_unique<DnnlKernel>(a.Describe());
    k->AddInput(DNNL_ARG_FROM, 0, from_md, from_md, X.const_data);
    k->AddOutput(DNNL_ARG_TO, 0, to_md, to_md);
    k->Finish(dnnl::reorder(pd), pd.scratchpad_desc());
    *out = std::move(k);
    return Err::Ok();
  });
}

const tsr_value_view* ValueAt(const tsr_graph_view& g, int32_t vi) {
  return vi >= 0 && static_cast<uint32_t>(vi) < g.num_values ? &g.values[vi] : nullptr;
}

ConvLayoutMode ParseConvLayoutMode(const char* s) {
  if (!s || !*s) return ConvLayoutMode::kDefault;
  if (std::strcmp(s, "blocked") == 0) return ConvLayoutMode::kBlocked;
  if (std::strcmp(s, "nhwc") == 0 || std::strcmp(s, "any") == 0) return ConvLayoutMode::kOneDnnPick;
  return ConvLayoutMode::kDefault;
}

// The 16-channel blocked layout of a rank-3/4/5 value ("" for other ranks).
const char* Blocked16Name(size_t rank) {
  return rank == 3 ? "nCw16c" : rank == 4 ? "nChw16c" : rank == 5 ? "nCdhw16c" : "";
}

// Whether the conv node `a` should write Y in the 16-channel blocked layout
// (mode kBlocked): f32/bf16; any channel count without groups (blocks are
// zero-padded to 16: 24 channels take 32); grouped convs need whole blocks per
// group or one channel per group (depthwise); and oneDNN has a
// non-reference implementation reading X in `x_layout` and writing Y blocked.
// `x_layout` "" (plain X) is checked with format_tag::any: the kernel lets
// oneDNN pick src for a plain X and reorders X into it (kernels_dnnl.cpp).
bool BlockedConvFits(const NodeArgs& a, const std::string& x_layout, memory::desc* y_md) {
  const TensorArg& X = *a.inputs[0];
  const TensorArg& Y = *a.outputs[0];
  if (!a.has_input(1) || X.dims.size() < 3 || X.dims.size() > 5 || a.inputs[1]->dims.size() != X.dims.size())
    return false;
  if ((X.dtype != TSR_DTYPE_F32 && X.dtype != TSR_DTYPE_BF16) || (Y.dtype != TSR_DTYPE_F32 && Y.dtype != TSR_DTYPE_BF16))
    return false;
  const Dims& wd = a.inputs[1]->dims;
  const int64_t G = a.attrs().Int("group", 1), C = X.dims[1], M = Y.dims[1];
  if (G < 1 || C % G != 0 || M % G != 0 || wd[0] != M || wd[1] * G != C) return false;
  const bool depthwise = G > 1 && C / G == 1 && M / G == 1;
  // Grouped (not depthwise) convs need whole 16-channel blocks per group.
  if (G > 1 && !depthwise && ((C / G) % 16 != 0 || (M / G) % 16 != 0)) return false;
  const memory::data_type xdt = DnnlType(X.dtype), ydt = DnnlType(Y.dtype);
  memory::desc x_md;
  if (x_layout.empty()) x_md = memory::desc(X.dims, xdt, tag::any);
  else if (!LayoutDesc(X.dims, xdt, x_layout, &x_md)) return false;
  if (!LayoutDesc(Y.dims, ydt, Blocked16Name(Y.dims.size()), y_md)) return false;
  Window win;
  win.in.assign(X.dims.begin() + 2, X.dims.end());
  win.k.assign(wd.begin() + 2, wd.end());
  if (!ResolveWindow(a, win).ok()) return false;
  memory::dims wdims = wd;
  if (G > 1) {
    wdims = {G, M / G, C / G};
    wdims.insert(wdims.end(), wd.begin() + 2, wd.end());
  }
  try {
    using cf = dnnl::convolution_forward;
    cf::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, x_md,
                  memory::desc(wdims, xdt, tag::any), *y_md, win.s, Minus1(win.d), win.pl, win.pr);
    cf::primitive_desc pd(desc, MakeAttr(a), du::Engine());
    const char* impl = pd.impl_info_str();
    return impl && std::strncmp(impl, "ref", 3) != 0 && !(pd.dst_desc() != *y_md);
  } catch (const dnnl::error&) {
    return false;
  }
}

}  // namespace

namespace dnnlk {

bool LayoutDesc(const Dims& dims, memory::data_type dt, const std::string& layout, memory::desc* out) {
  if (layout.empty()) {
    *out = PlainDescOf(dims, dt);
    return true;
  }
  for (const LayoutTag& l : kLayouts)
    if (layout == l.name && static_cast<int>(dims.size()) == l.rank) {
      *out = memory::desc(dims, dt, l.t);
      return true;
    }
  return false;
}

std::string LayoutName(const memory::desc& md) {
  const Dims dims = md.dims();
  if (md == PlainDescOf(dims, md.data_type())) return "";
  for (const LayoutTag& l : kLayouts)
    if (static_cast<int>(dims.size()) == l.rank && md == memory::desc(dims, md.data_type(), l.t)) return l.name;
  return "";
}

std::string InputLayout(const NodeArgs& a, size_t i) { return LayoutEntry(a, kInLayoutsAttrName, i); }
std::string OutputLayout(const NodeArgs& a, size_t i) { return LayoutEntry(a, kOutLayoutsAttrName, i); }

Err InputDesc(const NodeArgs& a, size_t i, memory::data_type dt, memory::desc* out) {
  return DescFor(a, a.has_input(i) ? a.inputs[i] : nullptr, InputLayout(a, i), dt, "input", i, out);
}

Err OutputDesc(const NodeArgs& a, size_t i, memory::data_type dt, memory::desc* out) {
  return DescFor(a, i < a.outputs.size() ? a.outputs[i] : nullptr, OutputLayout(a, i), dt, "output", i, out);
}

}  // namespace dnnlk

ConvLayoutMode ConvLayoutFromEnv() {
  static const ConvLayoutMode mode = [] {
    const ConvLayoutMode m = ParseConvLayoutMode(std::getenv("TESSERA_CPU_CONV_LAYOUT"));
    return m == ConvLayoutMode::kDefault ? kDefaultConvLayoutMode : m;
  }();
  return mode;
}

Err ChooseLayouts(const tsr_graph_view& g, tsr_layout_choice* out_values, uint8_t* out_accepts) {
  return ChooseLayouts(g, ConvLayoutFromEnv(), out_values, out_accepts);
}

Err ChooseLayouts(const tsr_graph_view& g, ConvLayoutMode mode, tsr_layout_choice* out_values, uint8_t* out_accepts) {
  if (mode == ConvLayoutMode::kDefault) mode = kDefaultConvLayoutMode;
  size_t acc = 0;
  for (uint32_t ni = 0; ni < g.num_nodes; ++ni) {
    const tsr_node_view& n = g.nodes[ni];
    uint8_t* node_acc = out_accepts + acc;
    acc += n.num_inputs;
    const std::string op = n.op_type ? n.op_type : "";
    const std::string dom = n.domain ? n.domain : "";
    const bool conv = (dom.empty() || dom == "ai.onnx") ? op == "Conv" : dom == "tessera" && op == "FusedConv";
    const bool pool = (dom.empty() || dom == "ai.onnx") && (op == "MaxPool" || op == "AveragePool");
    if (!conv && !pool) continue;
    // Node arguments from the view (static shapes at this point).
    std::vector<TensorArg> vals(n.num_inputs + n.num_outputs);
    NodeArgs a;
    a.node = &n;
    bool ok = true;
    for (uint32_t k = 0; k < n.num_inputs + n.num_outputs; ++k) {
      const int32_t vi = k < n.num_inputs ? n.inputs[k] : n.outputs[k - n.num_inputs];
      const tsr_value_view* v = ValueAt(g, vi);
      if (v) {
        TensorArg& t = vals[k];
        t.dtype = v->dtype;
        if (v->rank < 0) ok = false;
        for (int32_t d = 0; d < v->rank; ++d) {
          if (v->dims[d] < 0) ok = false;
          t.dims.push_back(v->dims[d]);
        }
        t.numel = Numel(t.dims);
        t.const_data = v->const_data;
      }
      (k < n.num_inputs ? a.inputs : a.outputs).push_back(v ? &vals[k] : nullptr);
    }
    if (!ok || n.num_outputs == 0 || !a.has_input(0) || !a.outputs[0]) continue;
    const int32_t x = n.inputs[0], y = n.outputs[0];
    const std::string x_pref = out_values[x].layout;
    if (conv) {
      std::string layout;
      uint64_t bytes = 0;
      if (!PreferredConvLayout(a, &layout, &bytes).ok()) continue;
      // X arrives in x_pref unless it is read outside the segment (then it
      // may stay plain: a graph output is never renamed).
      const tsr_value_view* xv = ValueAt(g, x);
      const std::string x_layout = xv && (xv->flags & TSR_VALUE_GRAPH_OUTPUT) ? std::string() : x_pref;
      memory::desc blocked_md;
      if (!layout.empty() && mode == ConvLayoutMode::kBlocked && BlockedConvFits(a, x_layout, &blocked_md)) {
        layout = Blocked16Name(a.outputs[0]->dims.size());
        bytes = blocked_md.get_size();
      }
      if (!layout.empty()) {
        std::snprintf(out_values[y].layout, sizeof(out_values[y].layout), "%s", layout.c_str());
        out_values[y].bytes = bytes;
      }
      node_acc[0] = !x_pref.empty();
      if (dom == "tessera" && n.num_inputs > 3 && n.inputs[3] >= 0) node_acc[3] = out_values[n.inputs[3]].layout[0] != 0;
    } else {
      if (x_pref.empty() || (n.num_outputs > 1 && n.outputs[1] >= 0)) continue;  // Indices: own loop, plain
      const int32_t t = vals[0].dtype;
      if (t != TSR_DTYPE_F32 && t != TSR_DTYPE_BF16) continue;
      memory::desc md;
      if (!LayoutDesc(a.outputs[0]->dims, DnnlType(t), x_pref, &md)) continue;
      node_acc[0] = 1;
      std::snprintf(out_values[y].layout, sizeof(out_values[y].layout), "%s", x_pref.c_str());
      out_values[y].bytes = md.get_size();
    }
  }
  return Err::Ok();
}

void RegisterLayoutKernels(KernelRegistry& r) {
  r.Add({"tessera", "LayoutConvert", &CreateLayoutConvert, nullptr});
}

}  // namespace tessera::cpu

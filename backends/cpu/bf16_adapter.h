// Runs an f32 kernel on bf16 tensors (the precision policy's bf16 regions,
// compiler/precision.h): bf16 inputs are widened to f32 per call, the f32
// kernel runs, and bf16 outputs are rounded back (nearest even). Constant bf16
// inputs are widened once, at creation. Arithmetic therefore happens in f32;
// only storage is bf16.
//
// Per-call scratch is thread_local (Run stays reentrant). Every input is read
// into scratch before the inner kernel writes, so an output aliasing an input
// (the in-place rule of backend.h `execute`) is safe.
#pragma once

#include <cstring>
#include <memory>
#include <vector>

#include "backends/common/plugin_util.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/parallel.h"

namespace tessera::cpu {

class Bf16Adapter final : public Kernel {
 public:
  // True when some input or output of `args` is bf16.
  static bool Needed(const NodeArgs& args) {
    for (const TensorArg* t : args.inputs)
      if (t && t->dtype == TSR_DTYPE_BF16) return true;
    for (const TensorArg* t : args.outputs)
      if (t && t->dtype == TSR_DTYPE_BF16) return true;
    return false;
  }

  // Creates `f32_factory`'s kernel over the f32 versions of args' tensors.
  static Err Create(const NodeArgs& args, KernelFactory f32_factory, std::unique_ptr<Kernel>* out) {
    auto k = std::unique_ptr<Bf16Adapter>(new Bf16Adapter());
    const size_t ni = args.inputs.size(), no = args.outputs.size();
    k->args_.reserve(ni + no);  // never reallocated: the inner NodeArgs point into it
    k->consts_.resize(ni);
    NodeArgs inner = args;
    inner.inputs.assign(ni, nullptr);
    inner.outputs.assign(no, nullptr);
    for (size_t i = 0; i < ni + no; ++i) {
      const TensorArg* t = i < ni ? args.inputs[i] : args.outputs[i - ni];
      Slot s;
      if (t) {
        k->args_.push_back(*t);
        TensorArg& a = k->args_.back();
        s.present = true;
        s.numel = t->numel;
        if (t->dtype == TSR_DTYPE_BF16) {
          a.dtype = TSR_DTYPE_F32;
          s.widen = !t->const_data;
          if (t->const_data) {  // widened once, here
            std::vector<float>& c = k->consts_[i];
            c.resize(static_cast<size_t>(t->numel));
            const uint16_t* src = static_cast<const uint16_t*>(t->const_data);
            for (int64_t e = 0; e < t->numel; ++e) c[static_cast<size_t>(e)] = plugin::BF16BitsToFloat(src[e]);
            a.const_data = c.data();
          }
        }
        (i < ni ? inner.inputs[i] : inner.outputs[i - ni]) = &a;
      }
      (i < ni ? k->in_ : k->out_).push_back(s);
    }
    Err e = f32_factory(inner, &k->inner_);
    if (!e.ok()) return e;
    if (!k->inner_) return MakeErr(TSR_ERR_INTERNAL, "%s: bf16 adapter: no f32 kernel", args.Describe().c_str());
    *out = std::move(k);
    return Err::Ok();
  }

  Err Run(const void* const* in, void* const* out) const override {
    int64_t need = 0;
    for (const Slot& s : in_)
      if (s.widen) need += s.numel;
    for (const Slot& s : out_)
      if (s.widen) need += s.numel;
    thread_local std::vector<float> scratch;
    if (static_cast<int64_t>(scratch.size()) < need) scratch.resize(static_cast<size_t>(need));
    float* p = scratch.data();
    std::vector<const void*> ins(in_.size());
    std::vector<void*> outs(out_.size());
    for (size_t i = 0; i < in_.size(); ++i) {
      ins[i] = consts_[i].empty() ? in[i] : consts_[i].data();  // bf16 constants: their f32 copy
      if (!in_[i].widen || !in[i]) continue;
      Widen(static_cast<const uint16_t*>(in[i]), p, in_[i].numel);
      ins[i] = p;
      p += in_[i].numel;
    }
    for (size_t o = 0; o < out_.size(); ++o) {
      outs[o] = out[o];
      if (!out_[o].widen || !out[o]) continue;
      outs[o] = p;
      p += out_[o].numel;
    }
    Err e = inner_->Run(ins.data(), outs.data());
    if (!e.ok()) return e;
    for (size_t o = 0; o < out_.size(); ++o)
      if (out_[o].widen && out[o])
        Narrow(static_cast<const float*>(outs[o]), static_cast<uint16_t*>(out[o]), out_[o].numel);
    return Err::Ok();
  }

 private:
  struct Slot {
    bool present = false;
    bool widen = false;  // bf16 at run time: converted through scratch
    int64_t numel = 0;
  };

  Bf16Adapter() = default;

  static void Widen(const uint16_t* src, float* dst, int64_t n) {
    ParallelFor(n, 1 << 15, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
        std::memcpy(dst + i, &bits, 4);
      }
    });
  }
  static void Narrow(const float* src, uint16_t* dst, int64_t n) {
    ParallelFor(n, 1 << 15, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dst[i] = plugin::FloatToBF16Bits(src[i]);
    });
  }

  std::unique_ptr<Kernel> inner_;
  std::vector<TensorArg> args_;
  std::vector<std::vector<float>> consts_;
  std::vector<Slot> in_, out_;
};

}  // namespace tessera::cpu

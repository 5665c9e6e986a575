// Op schemas: ONNX Attention (opset 23, 24) and RotaryEmbedding (opset 23).
//
// Attention(Q, K, V [, attn_mask, past_key, past_value, nonpad_kv_seqlen])
//   -> Y [, present_key, present_value, qk_matmul_output]
// Q/K/V are all 4-D ([batch, heads, seq, head_size]) or all 3-D
// ([batch, seq, heads * head_size], with the q_num_heads / kv_num_heads
// attributes). Y has Q's layout and V's head size; present_* are 4-D
// [batch, kv_heads, past + kv_seq, *]; qk_matmul_output is
// [batch, q_heads, q_seq, past + kv_seq]. nonpad_kv_seqlen exists from opset 24.
//
// RotaryEmbedding(X, cos_cache, sin_cache [, position_ids]) -> Y (X's type).
#include <string>
#include <vector>

#include "graph/op_schema.h"

namespace tessera {
namespace {

DType FirstKnown(DType a, DType b) { return a != DType::kUndefined ? a : b; }

Dim AddDims(const Dim& a, const Dim& b) {
  if (a.is_known() && b.is_known()) return Dim::Known(a.value + b.value);
  if (b.is_known() && b.value == 0) return a;
  if (a.is_known() && a.value == 0) return b;
  return Dim::Unknown();
}

// Two dims that must agree: error when both are known and differ, else the more informative one.
Result<Dim> Unify(const InferenceContext& ctx, const Dim& a, const Dim& b, const std::string& what) {
  if (a.is_known() && b.is_known() && a.value != b.value) return ctx.Error(what, " (", a.value, " vs ", b.value, ")");
  if (a.is_known()) return a;
  if (b.is_known()) return b;
  return a.symbol.empty() ? b : a;
}

// `hidden` / heads for a 3-D input; error when known and not divisible.
Result<Dim> SplitHidden(const InferenceContext& ctx, const Dim& hidden, int64_t heads, const char* what,
                        const char* attr) {
  if (!hidden.is_known()) return Dim::Unknown();
  if (hidden.value % heads != 0)
    return ctx.Error(what, " hidden size ", hidden.value, " is not divisible by ", attr, " = ", heads);
  return Dim::Known(hidden.value / heads);
}

Status CheckFloatInput(const InferenceContext& ctx, size_t i, const char* name) {
  DType t = ctx.input(i).dtype;
  if (t == DType::kUndefined || IsFloatDType(t)) return Status::Ok();
  return ctx.Error(name, " has dtype ", DTypeName(t), ", expected a floating-point type");
}

Status CheckSame(const InferenceContext& ctx, size_t a, size_t b, const char* na, const char* nb) {
  DType x = ctx.input(a).dtype, y = ctx.input(b).dtype;
  if (x == DType::kUndefined || y == DType::kUndefined || x == y) return Status::Ok();
  return ctx.Error(na, " has dtype ", DTypeName(x), " but ", nb, " has ", DTypeName(y));
}

// Canonical 4-D view of Q, K or V: batch, heads, seq, head_size.
struct Heads4 {
  Dim batch, heads, seq, head;
};

Status InferAttention(InferenceContext& ctx) {
  static const char* kQkv[] = {"Q", "K", "V"};
  for (size_t i = 0; i < 3; ++i) TSR_RETURN_IF_ERROR(CheckFloatInput(ctx, i, kQkv[i]));
  TSR_RETURN_IF_ERROR(CheckSame(ctx, 0, 1, "Q", "K"));
  if (ctx.has_input(6) && ctx.opset < 24)
    return ctx.Error("input 6 (nonpad_kv_seqlen) exists from opset 24 on; the model uses opset ", ctx.opset);
  const Node& n = *ctx.node;
  const int64_t mode = n.GetInt("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3) return ctx.Error("qk_matmul_output_mode must be 0, 1, 2 or 3, got ", mode);
  if (n.has_attr("softcap") && !(n.GetFloat("softcap", 0.f) >= 0.f))
    return ctx.Error("softcap must be >= 0, got ", n.GetFloat("softcap", 0.f));
  const int64_t causal = n.GetInt("is_causal", 0);
  if (causal != 0 && causal != 1) return ctx.Error("is_causal must be 0 or 1, got ", causal);
  if (ctx.has_input(4) != ctx.has_input(5))
    return ctx.Error("past_key and past_value must be given together (got only ",
                     ctx.has_input(4) ? "past_key" : "past_value", ")");
  if (ctx.has_input(6) && ctx.has_input(4))
    return ctx.Error("nonpad_kv_seqlen cannot be used together with past_key/past_value");

  const DType t1 = FirstKnown(ctx.input(0).dtype, ctx.input(1).dtype);
  const DType t2 = ctx.input(2).dtype;
  int rank = -1;
  for (size_t i = 0; i < 3; ++i) {
    const Shape& s = ctx.input(i).shape;
    if (!s.has_rank()) continue;
    if (s.rank() != 3 && s.rank() != 4)
      return ctx.Error(kQkv[i], " must have rank 3 or 4, got shape ", s.ToString());
    if (rank >= 0 && s.rank() != rank)
      return ctx.Error("Q, K and V must have the same rank (", kQkv[i], " has shape ", s.ToString(), ")");
    rank = s.rank();
  }
  const int64_t qh_attr = n.GetInt("q_num_heads", 0), kvh_attr = n.GetInt("kv_num_heads", 0);
  if (rank == 3 && (qh_attr <= 0 || kvh_attr <= 0))
    return ctx.Error("3-D Q/K/V need the attributes q_num_heads and kv_num_heads > 0 (got ", qh_attr, " and ",
                     kvh_attr, ")");

  // Each of Q, K, V as [batch, heads, seq, head_size].
  Heads4 h[3];
  for (size_t i = 0; i < 3; ++i) {
    const Shape& s = ctx.input(i).shape;
    h[i] = Heads4{Dim::Unknown(), Dim::Unknown(), Dim::Unknown(), Dim::Unknown()};
    const int64_t heads = i == 0 ? qh_attr : kvh_attr;
    if (rank == 3) h[i].heads = Dim::Known(heads);
    if (!s.has_rank()) continue;
    if (rank == 4) {
      h[i] = Heads4{s.dim(0), s.dim(1), s.dim(2), s.dim(3)};
    } else {
      h[i].batch = s.dim(0);
      h[i].seq = s.dim(1);
      TSR_ASSIGN_OR_RETURN(h[i].head, SplitHidden(ctx, s.dim(2), heads, kQkv[i],
                                                  i == 0 ? "q_num_heads" : "kv_num_heads"));
    }
  }
  Dim batch = h[0].batch;
  TSR_ASSIGN_OR_RETURN(batch, Unify(ctx, batch, h[1].batch, "Q and K batch sizes differ"));
  TSR_ASSIGN_OR_RETURN(batch, Unify(ctx, batch, h[2].batch, "Q and V batch sizes differ"));
  Dim kv_heads;
  TSR_ASSIGN_OR_RETURN(kv_heads, Unify(ctx, h[1].heads, h[2].heads, "K and V head counts differ"));
  const Dim& q_heads = h[0].heads;
  if (q_heads.is_known() && kv_heads.is_known() && (kv_heads.value == 0 || q_heads.value % kv_heads.value != 0))
    return ctx.Error("the query head count ", q_heads.value, " is not a multiple of the key/value head count ",
                     kv_heads.value);
  Dim kv_seq;
  TSR_ASSIGN_OR_RETURN(kv_seq, Unify(ctx, h[1].seq, h[2].seq, "K and V sequence lengths differ"));
  Dim head;
  TSR_ASSIGN_OR_RETURN(head, Unify(ctx, h[0].head, h[1].head, "Q and K head sizes differ"));
  const Dim& v_head = h[2].head;

  Dim past = Dim::Known(0);
  if (ctx.has_input(4)) {
    TSR_RETURN_IF_ERROR(CheckSame(ctx, 4, 0, "past_key", "Q"));
    TSR_RETURN_IF_ERROR(CheckSame(ctx, 5, 2, "past_value", "V"));
    const Shape& pk = ctx.input(4).shape;
    const Shape& pv = ctx.input(5).shape;
    if (pk.has_rank() && pk.rank() != 4) return ctx.Error("past_key must have rank 4, got shape ", pk.ToString());
    if (pv.has_rank() && pv.rank() != 4) return ctx.Error("past_value must have rank 4, got shape ", pv.ToString());
    Dim pseq = Dim::Unknown();
    if (pk.has_rank()) {
      TSR_ASSIGN_OR_RETURN(batch, Unify(ctx, batch, pk.dim(0), "past_key batch size differs from Q's"));
      TSR_ASSIGN_OR_RETURN(kv_heads, Unify(ctx, kv_heads, pk.dim(1), "past_key head count differs from K's"));
      TSR_ASSIGN_OR_RETURN(head, Unify(ctx, head, pk.dim(3), "past_key head size differs from K's"));
      pseq = pk.dim(2);
    }
    if (pv.has_rank()) {
      TSR_ASSIGN_OR_RETURN(batch, Unify(ctx, batch, pv.dim(0), "past_value batch size differs from Q's"));
      TSR_ASSIGN_OR_RETURN(kv_heads, Unify(ctx, kv_heads, pv.dim(1), "past_value head count differs from V's"));
      TSR_RETURN_IF_ERROR(Unify(ctx, v_head, pv.dim(3), "past_value head size differs from V's").status());
      TSR_ASSIGN_OR_RETURN(pseq, Unify(ctx, pseq, pv.dim(2), "past_key and past_value sequence lengths differ"));
    }
    past = pseq;
  }
  const Dim total = AddDims(past, kv_seq);

  if (ctx.has_input(3)) {
    DType mt = ctx.input(3).dtype;
    if (mt != DType::kUndefined && mt != DType::kBool && !IsFloatDType(mt) && !IsIntegerDType(mt))
      return ctx.Error("attn_mask has dtype ", DTypeName(mt), ", expected bool or a numeric type");
    const Shape& m = ctx.input(3).shape;
    if (m.has_rank()) {
      if (m.rank() < 1 || m.rank() > 4)
        return ctx.Error("attn_mask must have rank 1 to 4, got shape ", m.ToString());
      // Right-aligned against [batch, q_heads, q_seq, total]; the last dim may be shorter (padded).
      const Dim want[4] = {batch, q_heads, h[0].seq, total};
      const char* names[4] = {"batch", "query heads", "query sequence", "total sequence"};
      for (int d = 0; d < m.rank(); ++d) {
        const int w = 4 - m.rank() + d;
        const Dim& md = m.dim(d);
        if (!md.is_known() || !want[w].is_known()) continue;
        if (w == 3 ? md.value > want[w].value : (md.value != 1 && md.value != want[w].value))
          return ctx.Error("attn_mask ", m.ToString(), " does not fit the ", names[w], " length ", want[w].value);
      }
    }
  }
  if (ctx.has_input(6)) {
    DType st = ctx.input(6).dtype;
    if (st != DType::kUndefined && st != DType::kI64)
      return ctx.Error("nonpad_kv_seqlen has dtype ", DTypeName(st), ", expected i64");
    const Shape& s = ctx.input(6).shape;
    if (s.has_rank() && s.rank() != 1)
      return ctx.Error("nonpad_kv_seqlen must have rank 1 ([batch]), got shape ", s.ToString());
    if (s.has_rank()) TSR_RETURN_IF_ERROR(Unify(ctx, batch, s.dim(0), "nonpad_kv_seqlen length differs from the batch size").status());
  }

  // Outputs.
  if (rank == 3) {
    Dim hidden = q_heads.is_known() && v_head.is_known() ? Dim::Known(q_heads.value * v_head.value) : Dim::Unknown();
    ctx.outputs[0] = TensorType{t1, Shape({batch, h[0].seq, hidden})};
  } else if (rank == 4) {
    ctx.outputs[0] = TensorType{t1, Shape({batch, q_heads, h[0].seq, v_head})};
  } else {
    ctx.outputs[0] = TensorType{t1, Shape::UnknownRank()};
  }
  if (ctx.outputs.size() > 1) ctx.outputs[1] = TensorType{t1, Shape({batch, kv_heads, total, head})};
  if (ctx.outputs.size() > 2) ctx.outputs[2] = TensorType{t2, Shape({batch, kv_heads, total, v_head})};
  if (ctx.outputs.size() > 3) ctx.outputs[3] = TensorType{t1, Shape({batch, q_heads, h[0].seq, total})};
  return Status::Ok();
}

Status InferRotaryEmbedding(InferenceContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.dtype != DType::kUndefined && x.dtype != DType::kF32 && x.dtype != DType::kF16 && x.dtype != DType::kBF16)
    return ctx.Error("input has dtype ", DTypeName(x.dtype), ", expected f32, f16 or bf16");
  TSR_RETURN_IF_ERROR(CheckSame(ctx, 1, 0, "cos_cache", "input"));
  TSR_RETURN_IF_ERROR(CheckSame(ctx, 2, 0, "sin_cache", "input"));
  const Node& n = *ctx.node;
  const int64_t num_heads = n.GetInt("num_heads", 0);
  const int64_t rot = n.GetInt("rotary_embedding_dim", 0);
  const int64_t inter = n.GetInt("interleaved", 0);
  if (inter != 0 && inter != 1) return ctx.Error("interleaved must be 0 or 1, got ", inter);
  if (num_heads < 0) return ctx.Error("num_heads must be >= 0, got ", num_heads);
  if (rot < 0) return ctx.Error("rotary_embedding_dim must be >= 0, got ", rot);
  const bool has_pos = ctx.has_input(3);
  if (has_pos && ctx.input(3).dtype != DType::kUndefined && ctx.input(3).dtype != DType::kI64)
    return ctx.Error("position_ids has dtype ", DTypeName(ctx.input(3).dtype), ", expected i64");

  Dim batch = Dim::Unknown(), seq = Dim::Unknown(), head = Dim::Unknown();
  if (x.shape.has_rank()) {
    const Shape& s = x.shape;
    if (s.rank() == 4) {
      batch = s.dim(0);
      seq = s.dim(2);
      head = s.dim(3);  // num_heads, if given, is not used for 4-D inputs (as in ONNX's reference)
    } else if (s.rank() == 3) {
      if (num_heads == 0) return ctx.Error("a 3-D input needs the attribute num_heads > 0");
      batch = s.dim(0);
      seq = s.dim(1);
      if (s.dim(2).is_known()) {
        if (s.dim(2).value % num_heads != 0)
          return ctx.Error("hidden size ", s.dim(2).value, " is not divisible by num_heads = ", num_heads);
        head = Dim::Known(s.dim(2).value / num_heads);
      }
    } else {
      return ctx.Error("input must have rank 3 or 4, got shape ", s.ToString());
    }
  }
  Dim half = Dim::Unknown();
  if (head.is_known()) {
    const int64_t r = rot == 0 ? head.value : rot;
    if (r > head.value) return ctx.Error("rotary_embedding_dim ", r, " exceeds the head size ", head.value);
    if (r % 2 != 0) return ctx.Error("the rotary dimension ", r, " must be even");
    half = Dim::Known(r / 2);
  } else if (rot > 0) {
    if (rot % 2 != 0) return ctx.Error("rotary_embedding_dim ", rot, " must be even");
    half = Dim::Known(rot / 2);
  }
  for (size_t i = 1; i <= 2; ++i) {
    const Shape& c = ctx.input(i).shape;
    const char* name = i == 1 ? "cos_cache" : "sin_cache";
    if (!c.has_rank()) continue;
    const int want = has_pos ? 2 : 3;
    if (c.rank() != want)
      return ctx.Error(name, " must have rank ", want, has_pos ? " ([max_position, rotary_dim / 2]) with position_ids"
                                                               : " ([batch, seq, rotary_dim / 2]) without position_ids",
                       ", got shape ", c.ToString());
    TSR_RETURN_IF_ERROR(Unify(ctx, half, c.dim(c.rank() - 1), StrCat(name, " last dim must be rotary_dim / 2")).status());
    if (!has_pos) {
      TSR_RETURN_IF_ERROR(Unify(ctx, batch, c.dim(0), StrCat(name, " batch size differs from the input's")).status());
      TSR_RETURN_IF_ERROR(Unify(ctx, seq, c.dim(1), StrCat(name, " sequence length differs from the input's")).status());
    }
  }
  if (has_pos) {
    const Shape& p = ctx.input(3).shape;
    if (p.has_rank()) {
      if (p.rank() != 2) return ctx.Error("position_ids must have rank 2 ([batch, seq]), got shape ", p.ToString());
      TSR_RETURN_IF_ERROR(Unify(ctx, batch, p.dim(0), "position_ids batch size differs from the input's").status());
      TSR_RETURN_IF_ERROR(Unify(ctx, seq, p.dim(1), "position_ids sequence length differs from the input's").status());
    }
  }
  ctx.outputs[0] = x;
  return Status::Ok();
}

}  // namespace

void RegisterAttentionOps(OpRegistry& r) {
  r.Add("Attention", 3, 7, 1, 4, InferAttention);
  r.Add("RotaryEmbedding", 3, 4, 1, 1, InferRotaryEmbedding);
}

}  // namespace tessera

// Finite-difference checks of every gradient rule in the autodiff registry,
// run through the CPU backend (f64 where the forward CPU kernel supports it,
// else f32 with looser tolerances; see gradcheck_util.h).
#include <set>

#include "tests/unit/training/gradcheck_util.h"

namespace tessera::training_test {
namespace {

using A = Attribute;

// Ops covered below; GradCheckCoverage checks that every registered rule is here.
const std::set<std::string>& Covered() {
  static const std::set<std::string> s = {
      "Add", "Sum", "Sub", "Mul", "Div", "Neg", "Identity", "Exp", "Log", "Sqrt", "Pow", "Relu", "LeakyRelu",
      "Sigmoid", "Tanh", "Gelu", "tessera.Gelu", "Cast", "MatMul", "Gemm", "Reshape", "Flatten", "Squeeze",
      "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather", "Expand", "ReduceSum", "ReduceMean", "Conv",
      "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "LayerNormalization", "Softmax",
      "LogSoftmax", "Dropout", "tessera.SoftmaxCrossEntropy", "SoftmaxCrossEntropyLoss", "tessera.MSE", "Erf", "Abs",
      "Reciprocal", "Softplus", "Clip", "Where", "Max", "Min", "Pad", "Tile"};
  return s;
}

TEST(GradCheckCoverage, EveryRegisteredRuleHasAGradCheck) {
  for (const std::string& op : autodiff::ListGradRules()) EXPECT_TRUE(Covered().count(op)) << op << " has no gradcheck";
}

// ---- elementwise (f64) -------------------------------------------------------------------

TEST(GradCheck, AddSubMulDivWithBroadcast) {
  GradCheck c;
  Value* a = c.Param("a", {2, 3, 4});
  Value* b = c.Param("b", {3, 1});
  Value* d = c.Param("d", {4}, 0.5, 2.0);
  Value* y = c.Op("Add", {a, b});
  y = c.Op("Sub", {y, d});
  y = c.Op("Mul", {y, b});
  y = c.Op("Div", {y, d});
  c.Check(y, kH64, kRtol64, kAtol64);
}

TEST(GradCheck, SumNegIdentityExpLogSqrt) {
  GradCheck c;
  Value* a = c.Param("a", {3, 4}, 0.2, 2.0);
  Value* b = c.Param("b", {4}, 0.2, 2.0);
  Value* s = c.Op("Sum", {a, b, a});  // a used twice: gradients accumulate
  Value* y = c.Op("Add", {c.Op("Log", {s}), c.Op("Sqrt", {s})});
  y = c.Op("Add", {y, c.Op("Neg", {c.Op("Exp", {c.Op("Identity", {b})})})});
  c.Check(y, kH64, kRtol64, kAtol64);
}

TEST(GradCheck, PowBothInputs) {
  GradCheck c;
  Value* a = c.Param("a", {2, 3}, 0.5, 2.0);
  Value* e = c.Param("e", {3}, -1.5, 2.5);
  c.Check(c.Op("Pow", {a, e}), kH64, kRtol64, kAtol64);
}

TEST(GradCheck, ReluLeakyReluSigmoidTanh) {
  GradCheck c;
  Value* x = c.Param("x", {3, 5}, -2.0, 2.0, 0.05);
  Value* y = c.Op("Add", {c.Op("Relu", {x}), c.Op("LeakyRelu", {x}, {{"alpha", A::Float(0.2f)}})});
  y = c.Op("Add", {y, c.Op("Mul", {c.Op("Sigmoid", {x}), c.Op("Tanh", {x})})});
  c.Check(y, kH64, kRtol64, kAtol64);
}

TEST(GradCheck, GeluExactAndTanh) {
  GradCheck c;
  Value* x = c.Param("x", {4, 3}, -3.0, 3.0);
  Value* y = c.Op("Add", {c.Op("Gelu", {x}, {}, "tessera"),
                          c.Op("Gelu", {x}, {{"approximate", A::String("tanh")}}, "tessera")});
  c.Check(y, kH64, kRtol64, kAtol64);
}

TEST(GradCheck, OnnxGeluOpset20) {
  GradCheck c(DType::kF64, 20);
  Value* x = c.Param("x", {2, 5}, -3.0, 3.0);
  c.Check(c.Op("Gelu", {x}, {{"approximate", A::String("tanh")}}), kH64, kRtol64, kAtol64);
}

TEST(GradCheck, CastRoundTrip) {
  GradCheck c;
  Value* x = c.Param("x", {2, 3});
  Value* f = c.Op("Cast", {x}, {{"to", A::Int(static_cast<int64_t>(DType::kF32))}});
  Value* y = c.Op("Cast", {c.Op("Mul", {f, f})}, {{"to", A::Int(static_cast<int64_t>(DType::kF64))}});
  c.Check(y, 1e-3, 1e-3, 1e-4);  // f32 rounding in the middle
}

TEST(GradCheck, ErfAbsReciprocalSoftplus) {
  GradCheck c;
  Value* x = c.Param("x", {3, 4}, -2.0, 2.0, 0.1);
  Value* y = c.Op("Add", {c.Op("Erf", {x}), c.Op("Mul", {c.Op("Abs", {x}), c.Op("Reciprocal", {x})})});
  c.Check(c.Op("Add", {y, c.Op("Softplus", {x})}), kH64, kRtol64, kAtol64);
}

TEST(GradCheck, ClipWithTensorBoundsAndOpset6Attributes) {
  {
    GradCheck c;
    Value* x = c.Param("x", {4, 3}, -2.0, 2.0);
    Value* lo = c.Param("lo", {}, -0.6, -0.4);
    Value* hi = c.Param("hi", {}, 0.4, 0.6);
    c.Check(c.Op("Clip", {x, lo, hi}), kH64, kRtol64, kAtol64);
  }
  {
    GradCheck c(DType::kF64, 6);
    Value* x = c.Param("x", {4, 3}, -2.0, 2.0);
    c.Check(c.Op("Clip", {x}, {{"min", A::Float(-0.5f)}, {"max", A::Float(0.7f)}}), kH64, kRtol64, kAtol64);
  }
}

TEST(GradCheck, WhereMaxMin) {
  GradCheck c;
  Value* a = c.Param("a", {3, 4});
  Value* b = c.Param("b", {4});
  Value* d = c.Param("d", {3, 1});
  Value* cond = c.g().AddConstant("cond", Tensor::FromVector<uint8_t>(DType::kBool, {3, 4},
                                                                      {1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1}));
  Value* y = c.Op("Where", {cond, a, b});
  y = c.Op("Add", {y, c.Op("Max", {a, b, d})});
  c.Check(c.Op("Add", {y, c.Op("Min", {a, d})}), kH64, kRtol64, kAtol64);
}

TEST(GradCheck, PadAndTile) {
  GradCheck c;
  Value* x = c.Param("x", {2, 3});
  Value* p = c.Op("Pad", {x, c.ConstI64("pads", {4}, {1, 0, 2, 2})});  // [5, 5]
  Value* t = c.Op("Tile", {x, c.ConstI64("reps", {2}, {2, 3})});       // [4, 9]
  Value* s = c.Op("Slice", {t, c.ConstI64("st", {2}, {0, 1}), c.ConstI64("en", {2}, {4, 6}),
                            c.ConstI64("ax", {2}, {0, 1})});  // [4, 5]
  c.Check(c.Op("Add", {c.Op("Slice", {p, c.ConstI64("st2", {1}, {1}), c.ConstI64("en2", {1}, {5}),
                                      c.ConstI64("ax2", {1}, {0})}),
                       s}),
          kH64, kRtol64, kAtol64);
}

// ---- matmul (f32: the CPU MatMul/Gemm kernels are f32-only) ------------------------------------------

TEST(GradCheck, MatMulBatchedBroadcast) {
  GradCheck c(DType::kF32);
  Value* a = c.Param("a", {2, 3, 4});
  Value* b = c.Param("b", {4, 5});
  c.Check(c.Op("MatMul", {a, b}), kH32, kRtol32, kAtol32);
}

TEST(GradCheck, MatMulWithOneDimensionalOperands) {
  {
    GradCheck c(DType::kF32);
    Value* a = c.Param("a", {2, 3, 4});
    Value* v = c.Param("v", {4});
    c.Check(c.Op("MatMul", {a, v}), kH32, kRtol32, kAtol32);
  }
  {
    GradCheck c(DType::kF32);
    Value* v = c.Param("v", {3});
    Value* b = c.Param("b", {2, 3, 4});
    c.Check(c.Op("MatMul", {v, b}), kH32, kRtol32, kAtol32);
  }
  {
    GradCheck c(DType::kF32);
    Value* u = c.Param("u", {5});
    Value* v = c.Param("v", {5});
    c.Check(c.Op("MatMul", {u, v}), kH32, kRtol32, kAtol32);
  }
}

TEST(GradCheck, GemmEveryTransposeCombination) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      SCOPED_TRACE(testing::Message() << "transA=" << ta << " transB=" << tb);
      GradCheck c(DType::kF32);
      Value* a = c.Param("a", ta ? std::vector<int64_t>{4, 3} : std::vector<int64_t>{3, 4});
      Value* b = c.Param("b", tb ? std::vector<int64_t>{2, 4} : std::vector<int64_t>{4, 2});
      Value* cc = c.Param("c", {2});
      c.Check(c.Op("Gemm", {a, b, cc},
                   {{"transA", A::Int(ta)}, {"transB", A::Int(tb)}, {"alpha", A::Float(0.7f)}, {"beta", A::Float(1.3f)}}),
              kH32, kRtol32, kAtol32);
    }
}

// ---- shape ops (f64) ---------------------------------------------------------------------------

TEST(GradCheck, ReshapeFlattenSqueezeUnsqueezeTranspose) {
  GradCheck c;
  Value* x = c.Param("x", {2, 3, 4});
  Value* y = c.Op("Reshape", {x, c.ConstI64("shape", {2}, {6, 4})});
  y = c.Op("Unsqueeze", {y, c.ConstI64("uaxes", {1}, {1})});
  y = c.Op("Transpose", {y}, {{"perm", A::Ints({2, 0, 1})}});
  y = c.Op("Squeeze", {y, c.ConstI64("saxes", {1}, {2})});
  y = c.Op("Flatten", {c.Op("Mul", {y, y})}, {{"axis", A::Int(1)}});
  c.Check(y, kH64, kRtol64, kAtol64);
}

TEST(GradCheck, ConcatSplitSlice) {
  GradCheck c;
  Value* a = c.Param("a", {2, 3});
  Value* b = c.Param("b", {2, 2});
  Value* cat = c.Op("Concat", {a, b, a}, {{"axis", A::Int(1)}});  // [2, 8]
  auto parts = c.OpN("Split", {cat, c.ConstI64("split", {2}, {5, 3})}, 2, {{"axis", A::Int(1)}});
  Value* s = c.Op("Slice", {parts[0], c.ConstI64("st", {1}, {1}), c.ConstI64("en", {1}, {-1}),
                            c.ConstI64("ax", {1}, {1})});  // [2, 3]
  Value* y = c.Op("Mul", {s, c.Op("Slice", {parts[1], c.ConstI64("st2", {1}, {0}), c.ConstI64("en2", {1}, {3}),
                                              c.ConstI64("ax2", {1}, {1})})});
  c.Check(y, kH64, kRtol64, kAtol64);
}

TEST(GradCheck, SliceWithStepsGoesThroughSliceGrad) {
  GradCheck c;
  Value* x = c.Param("x", {5, 6});
  Value* a = c.Op("Slice", {x, c.ConstI64("st", {2}, {4, 1}), c.ConstI64("en", {2}, {-6, 100}),
                            c.ConstI64("ax", {2}, {0, 1}), c.ConstI64("sp", {2}, {-2, 2})});  // [3, 3]
  Value* b = c.Op("Slice", {x, c.ConstI64("st2", {1}, {0}), c.ConstI64("en2", {1}, {3}), c.ConstI64("ax2", {1}, {0})});
  c.Check(c.Op("Add", {c.Op("Mul", {a, a}), c.Op("Slice", {b, c.ConstI64("st3", {1}, {0}), c.ConstI64("en3", {1}, {3}),
                                                           c.ConstI64("ax3", {1}, {1})})}),
          kH64, kRtol64, kAtol64);
}

TEST(GradCheck, SplitWithUnusedOutput) {
  GradCheck c;
  Value* a = c.Param("a", {4, 3});
  auto parts = c.OpN("Split", {a}, 2, {{"axis", A::Int(0)}});
  c.Check(c.Op("Mul", {parts[1], parts[1]}), kH64, kRtol64, kAtol64);
}

TEST(GradCheck, GatherEmbeddingWithRepeatsAndAxis1) {
  GradCheck c;
  Value* emb = c.Param("emb", {5, 3});
  Value* y0 = c.Op("Gather", {emb, c.ConstI64("ids", {2, 3}, {0, 4, 2, 4, 4, -1})});  // [2,3,3]
  Value* t = c.Param("t", {2, 4});
  Value* y1 = c.Op("Gather", {t, c.ConstI64("ids1", {3}, {3, 0, 3})}, {{"axis", A::Int(1)}});  // [2,3]
  Value* y = c.Op("Add", {y0, c.Op("Unsqueeze", {y1, c.ConstI64("ua", {1}, {2})})});
  c.Check(y, kH64, kRtol64, kAtol64);
}

TEST(GradCheck, ExpandReduceSumReduceMean) {
  GradCheck c;
  Value* x = c.Param("x", {3, 1});
  Value* z = c.Param("z", {2, 3, 4});
  Value* e = c.Op("Expand", {x, c.ConstI64("es", {3}, {2, 3, 4})});
  Value* y = c.Op("Mul", {e, z});
  Value* rs = c.Op("ReduceSum", {y, c.ConstI64("rax", {1}, {1})}, {{"keepdims", A::Int(0)}});  // [2,4]
  Value* rm = c.Op("ReduceMean", {y}, {{"axes", A::Ints({0, 2})}, {"keepdims", A::Int(1)}});  // [1,3,1] (opset 17: attribute)
  Value* out = c.Op("Add", {c.Op("Unsqueeze", {rs, c.ConstI64("u1", {1}, {1})}), rm});  // [2,3,4]
  c.Check(out, kH64, kRtol64, kAtol64);
}

TEST(GradCheck, ReduceOpset11AxesAttribute) {
  GradCheck c(DType::kF64, 11);
  Value* x = c.Param("x", {2, 3, 2});
  Value* y = c.Op("ReduceMean", {x}, {{"axes", A::Ints({-1})}, {"keepdims", A::Int(0)}});
  c.Check(c.Op("Mul", {y, y}), kH64, kRtol64, kAtol64);
}

// ---- nn ops ---------------------------------------------------------------------------------------

TEST(GradCheck, ConvStridedPaddedGroupedWithBias) {
  GradCheck c(DType::kF32);
  Value* x = c.Param("x", {2, 4, 5, 5});
  Value* w = c.Param("w", {6, 2, 3, 3});
  Value* b = c.Param("b", {6});
  c.Check(c.Op("Conv", {x, w, b},
               {{"strides", A::Ints({2, 1})}, {"pads", A::Ints({1, 0, 1, 1})}, {"group", A::Int(2)},
                {"kernel_shape", A::Ints({3, 3})}}),
          kH32, kRtol32, 5e-3);
}

TEST(GradCheck, ConvDilated1d) {
  GradCheck c(DType::kF32);
  Value* x = c.Param("x", {1, 2, 9});
  Value* w = c.Param("w", {3, 2, 3});
  c.Check(c.Op("Conv", {x, w}, {{"dilations", A::Ints({2})}, {"pads", A::Ints({1, 2})}}), kH32, kRtol32, kAtol32);
}

TEST(GradCheck, MaxPoolPadded) {
  GradCheck c;  // f64: the CPU MaxPool has an f64 loop
  Value* x = c.Param("x", {1, 2, 5, 5});
  c.Check(c.Op("MaxPool", {x}, {{"kernel_shape", A::Ints({3, 3})}, {"strides", A::Ints({2, 2})},
                                {"pads", A::Ints({1, 1, 1, 1})}}),
          kH64, kRtol64, kAtol64);
}

TEST(GradCheck, AveragePoolBothPadModes) {
  for (int cip = 0; cip < 2; ++cip) {
    SCOPED_TRACE(cip);
    GradCheck c(DType::kF32);
    Value* x = c.Param("x", {2, 1, 4, 5});
    c.Check(c.Op("AveragePool", {x}, {{"kernel_shape", A::Ints({2, 3})}, {"strides", A::Ints({2, 2})},
                                      {"pads", A::Ints({1, 1, 0, 1})}, {"count_include_pad", A::Int(cip)}}),
            kH32, kRtol32, kAtol32);
  }
}

TEST(GradCheck, GlobalAveragePool) {
  GradCheck c(DType::kF32);
  Value* x = c.Param("x", {2, 3, 2, 3});
  c.Check(c.Op("GlobalAveragePool", {x}), kH32, kRtol32, kAtol32);
}

TEST(GradCheck, BatchNormalizationTrainingMode) {
  GradCheck c(DType::kF32);
  Value* x = c.Param("x", {3, 2, 2, 2}, -2.0, 2.0);
  Value* s = c.Param("scale", {2}, 0.5, 1.5);
  Value* b = c.Param("bias", {2});
  Value* m = c.ConstF("mean", {2}, {0.1, -0.2});
  Value* v = c.ConstF("var", {2}, {1.0, 0.5});
  auto o = c.OpN("BatchNormalization", {x, s, b, m, v}, 3, {{"training_mode", A::Int(1)}, {"epsilon", A::Float(1e-3f)}});
  c.Check(o[0], 1e-2, 5e-2, 5e-3);
}

TEST(GradCheck, BatchNormalizationInferenceMode) {
  GradCheck c(DType::kF32);
  Value* x = c.Param("x", {2, 3, 2});
  Value* s = c.Param("scale", {3}, 0.5, 1.5);
  Value* b = c.Param("bias", {3});
  Value* m = c.ConstF("mean", {3}, {0.1, -0.2, 0.3});
  Value* v = c.ConstF("var", {3}, {1.0, 0.5, 2.0});
  c.Check(c.Op("BatchNormalization", {x, s, b, m, v}), kH32, kRtol32, kAtol32);
}

TEST(GradCheck, LayerNormalizationLastTwoAxes) {
  GradCheck c;
  Value* x = c.Param("x", {2, 3, 4});
  Value* s = c.Param("scale", {3, 4}, 0.5, 1.5);
  Value* b = c.Param("bias", {3, 4});
  c.Check(c.Op("LayerNormalization", {x, s, b}, {{"axis", A::Int(-2)}, {"epsilon", A::Float(1e-5f)}}), kH64, 1e-5,
          1e-6);
}

TEST(GradCheck, SoftmaxAndLogSoftmaxMiddleAxis) {
  GradCheck c;
  Value* x = c.Param("x", {2, 4, 3}, -2.0, 2.0);
  Value* y = c.Op("Add", {c.Op("Softmax", {x}, {{"axis", A::Int(1)}}), c.Op("LogSoftmax", {x}, {{"axis", A::Int(1)}})});
  c.Check(y, kH64, kRtol64, kAtol64);
}

TEST(GradCheck, SoftmaxOpset11Coerces2d) {
  GradCheck c(DType::kF64, 11);
  Value* x = c.Param("x", {2, 3, 2}, -2.0, 2.0);
  c.Check(c.Op("Softmax", {x}, {{"axis", A::Int(1)}}), kH64, kRtol64, kAtol64);
}

TEST(GradCheck, DropoutInferenceIsIdentity) {
  GradCheck c;
  Value* x = c.Param("x", {3, 4});
  c.Check(c.Op("Mul", {c.Op("Dropout", {x}), x}), kH64, kRtol64, kAtol64);
}

TEST(GradCheck, DropoutTrainingWithoutMaskOutputGetsOne) {
  GradCheck c;
  Value* x = c.Param("x", {3, 5});
  Value* ratio = c.ConstF("ratio", {}, {0.5});
  Value* tm = c.g().AddConstant("training", Tensor::FromVector<uint8_t>(DType::kBool, {}, {1}));
  Value* y = c.Op("Dropout", {x, ratio, tm}, {{"seed", A::Int(9)}});
  c.Check(c.Op("Mul", {y, x}), kH64, kRtol64, kAtol64);
}

TEST(GradCheck, DropoutTrainingUsesTheSeededMask) {
  GradCheck c;
  Value* x = c.Param("x", {4, 5});
  Value* ratio = c.ConstF("ratio", {}, {0.4});
  Value* tm = c.g().AddConstant("training", Tensor::FromVector<uint8_t>(DType::kBool, {}, {1}));
  auto o = c.OpN("Dropout", {x, ratio, tm}, 2, {{"seed", A::Int(123)}});
  c.Check(o[0], kH64, kRtol64, kAtol64);
}

// ---- losses (f64) -----------------------------------------------------------------------------------

TEST(GradCheck, SoftmaxCrossEntropyEveryReduction) {
  for (const char* red : {"mean", "sum", "none"}) {
    SCOPED_TRACE(red);
    GradCheck c;
    Value* x = c.Param("logits", {4, 3}, -2.0, 2.0);
    Value* l = c.ConstI64("labels", {4}, {2, -1, 0, 1});
    c.Check(c.Op("SoftmaxCrossEntropy", {x, l},
                 {{"reduction", A::String(red)}, {"ignore_index", A::Int(-1)}, {"label_smoothing", A::Float(0.2f)}},
                 "tessera"),
            kH64, kRtol64, kAtol64);
  }
}

TEST(GradCheck, OnnxSoftmaxCrossEntropyLoss) {
  GradCheck c;
  Value* x = c.Param("scores", {3, 4}, -2.0, 2.0);
  Value* l = c.ConstI64("labels", {3}, {3, 0, 3});
  c.Check(c.Op("SoftmaxCrossEntropyLoss", {x, l}, {{"reduction", A::String("mean")}}), kH64, kRtol64, kAtol64);
}

TEST(GradCheck, MSEBothInputs) {
  for (const char* red : {"mean", "sum", "none"}) {
    SCOPED_TRACE(red);
    GradCheck c;
    Value* p = c.Param("pred", {2, 3});
    Value* t = c.Param("target", {2, 3});
    c.Check(c.Op("MSE", {p, t}, {{"reduction", A::String(red)}}, "tessera"), kH64, kRtol64, kAtol64);
  }
}

// Relu's rule emits tessera.ReluGrad: its f32 kernel (|x| >= 0.2 keeps the
// finite differences off the kink; both signs occur).
TEST(GradCheck, ReluF32ThroughReluGrad) {
  GradCheck c(DType::kF32);
  Value* x = c.Param("x", {4, 6}, -2.0, 2.0, 0.2);
  Value* w = c.Param("w", {4, 6}, -1.0, 1.0);
  c.Check(c.Op("Mul", {c.Op("Relu", {x}), w}), kH32, kRtol32, kAtol32);
}

}  // namespace
}  // namespace tessera::training_test

"""Writes the committed seed corpus tests/fuzz/seeds/*.onnx: tiny hand-made
models that reach paths the ONNX node tests rarely combine (symbolic dims,
initializers feeding shape inputs, subgraphs, foldable chains, fusable
patterns). Run: .venv/bin/python tests/fuzz/make_seeds.py"""
import os

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def save(name, nodes, inputs, outputs, inits=(), opset=17):
    g = h.make_graph(nodes, name, inputs, outputs, list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def f32(name, shape):
    return h.make_tensor_value_info(name, TP.FLOAT, shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    w = nh.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    save("add_init", [h.make_node("Add", ["x", "w"], ["y"], name="add")], [f32("x", [2, 3])], [f32("y", None)], [w])
    shp = nh.from_array(np.array([3, -1], dtype=np.int64), "shp")
    save("reshape_symbolic", [h.make_node("Reshape", ["x", "shp"], ["r"], name="reshape"),
                              h.make_node("Relu", ["r"], ["y"], name="relu")],
         [f32("x", ["batch", 6])], [f32("y", None)], [shp])
    # Constant chain that fold_constants evaluates, then a Shape->Gather->Unsqueeze
    # ->Concat->Reshape chain like exported transformers have.
    c = h.make_node("Constant", [], ["c"], value=nh.from_array(np.ones((2, 3), np.float32)))
    save("fold_shape_chain", [
        c,
        h.make_node("Mul", ["c", "c"], ["c2"], name="mul"),
        h.make_node("Add", ["x", "c2"], ["a"], name="add"),
        h.make_node("Shape", ["a"], ["s"], name="shape"),
        h.make_node("Gather", ["s", "zero"], ["d0"], name="gather", axis=0),
        h.make_node("Unsqueeze", ["d0", "ax"], ["d0u"], name="unsq"),
        h.make_node("Concat", ["d0u", "m1"], ["ns"], name="concat", axis=0),
        h.make_node("Reshape", ["a", "ns"], ["y"], name="reshape"),
    ], [f32("x", ["n", 3])], [f32("y", None)],
        [nh.from_array(np.array(0, np.int64), "zero"), nh.from_array(np.array([0], np.int64), "ax"),
         nh.from_array(np.array([-1], np.int64), "m1")])
    # Conv + BatchNorm + Relu (fusion patterns, attributes of several types).
    cw = nh.from_array(np.ones((2, 1, 3, 3), np.float32), "cw")
    bn = [nh.from_array(np.ones(2, np.float32), n) for n in ("s", "b", "m", "v")]
    save("conv_bn_relu", [
        h.make_node("Conv", ["x", "cw"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1]),
        h.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn", epsilon=1e-5),
        h.make_node("Relu", ["bn"], ["y"], name="relu"),
    ], [f32("x", [1, 1, 4, 4])], [f32("y", None)], [cw] + bn)
    # If with two subgraphs reading an outer value.
    then_g = h.make_graph([h.make_node("Relu", ["x"], ["t"])], "then", [], [f32("t", [2])])
    else_g = h.make_graph([h.make_node("Neg", ["x"], ["e"])], "else", [], [f32("e", [2])])
    save("if_subgraph", [h.make_node("If", ["cond"], ["y"], name="if", then_branch=then_g, else_branch=else_g)],
         [h.make_tensor_value_info("cond", TP.BOOL, []), f32("x", [2])], [f32("y", None)])
    # MatMul + Softmax + LayerNormalization (attention-like), int64 and string attrs.
    save("matmul_softmax_ln", [
        h.make_node("MatMul", ["q", "k"], ["s"], name="mm"),
        h.make_node("Softmax", ["s"], ["p"], name="sm", axis=-1),
        h.make_node("LayerNormalization", ["p", "g", "bb"], ["y"], name="ln", axis=-1, epsilon=1e-5),
    ], [f32("q", ["b", 4, 8]), f32("k", ["b", 8, 4])], [f32("y", None)],
        [nh.from_array(np.ones(4, np.float32), "g"), nh.from_array(np.zeros(4, np.float32), "bb")])
    # Cast / Where / ReduceSum with axes input, Expand with a shape initializer.
    save("cast_where_reduce", [
        h.make_node("Cast", ["x"], ["xi"], name="cast", to=TP.INT32),
        h.make_node("Cast", ["xi"], ["xb"], name="castb", to=TP.BOOL),
        h.make_node("Where", ["xb", "x", "z"], ["w"], name="where"),
        h.make_node("Expand", ["w", "es"], ["e"], name="expand"),
        h.make_node("ReduceSum", ["e", "axes"], ["y"], name="rsum", keepdims=0),
    ], [f32("x", [1, 3]), f32("z", [1, 3])], [f32("y", None)],
        [nh.from_array(np.array([2, 3], np.int64), "es"), nh.from_array(np.array([1], np.int64), "axes")])


if __name__ == "__main__":
    main()

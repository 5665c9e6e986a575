// Data for training and evaluation: NumPy .npy files and the bundled data set
// (scikit-learn's 8x8 handwritten digits, read from the python3-sklearn
// package's digits.csv.gz).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/status.h"
#include "graph/tensor.h"

namespace tessera {

// .npy version 1.0/2.0/3.0, little-endian (or byte-order-free) f32 f64 i64 i32
// u8 i8 bool, C order (Fortran order is an error). Errors name the file.
Result<Tensor> LoadNpy(const std::string& path);
Status SaveNpy(const std::string& path, const Tensor& t);

struct Dataset {
  Tensor features;  // f32 [N, ...]
  Tensor labels;    // i64 [N]
  int64_t size() const { return labels.dims().empty() ? 0 : labels.dims()[0]; }
};

// scikit-learn's digits: 1797 samples of 64 pixels (0..16) and labels 0..9.
// Features are scaled to [0, 1] (pixel / 16) and shaped [N, 64], or
// [N, 1, 8, 8] with `image_shape`. Split (stratified, interleaved): the 5th,
// 10th, 15th, ... sample of each class in file order is "test" (355 rows),
// the other 1442 "train", both in file order (the file groups samples by
// writer; this mixes writers as a shuffled split would); "all" is every
// sample. The file
// is looked up in $TESSERA_DIGITS (a digits.csv.gz path), then in the
// python3-sklearn install (/usr/lib/python3/dist-packages/sklearn/datasets/
// data/digits.csv.gz) and the .venv; NotFound says how to install it.
Result<Dataset> LoadDigits(const std::string& split, bool image_shape = false);

// Rows [begin, begin + count) of a tensor's first axis, wrapping around at the
// end (so an epoch's last batch can be filled), as an owned tensor.
Result<Tensor> TakeRows(const Tensor& t, int64_t begin, int64_t count);
// Rows in the order of `index` (a permutation or any list of row numbers).
Result<Tensor> GatherRows(const Tensor& t, const std::vector<int64_t>& index);

}  // namespace tessera

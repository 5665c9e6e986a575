// plugin::ResolveSliceAxis (backends/common/plugin_util.h), the ONNX Slice
// range rule the CPU and OpenCL plugins share, against an index-by-index
// walk of the spec's clamps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>

#include "backends/common/plugin_util.h"

namespace {

// Walks the indices the spec selects: after the negative-index adjustment,
// start is clamped to [0, dim] (step > 0) or [0, dim - 1] (step < 0), end to
// [0, dim] or [-1, dim - 1]; indices start, start + step, ... before end.
void Walk(int64_t start, int64_t end, int64_t step, int64_t dim, int64_t* first, int64_t* count) {
  *first = 0;
  *count = 0;
  if (dim == 0) return;
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  start = step > 0 ? std::clamp<int64_t>(start, 0, dim) : std::clamp<int64_t>(start, 0, dim - 1);
  end = step > 0 ? std::clamp<int64_t>(end, 0, dim) : std::clamp<int64_t>(end, -1, dim - 1);
  *first = start;
  for (int64_t i = start; step > 0 ? i < end : i > end; i += step) ++*count;
}

TEST(PluginSliceAxis, MatchesAnIndexWalk) {
  for (int64_t dim = 0; dim <= 6; ++dim)
    for (int64_t step : {-3, -2, -1, 1, 2, 3})
      for (int64_t start = -9; start <= 9; ++start)
        for (int64_t end = -9; end <= 9; ++end) {
          int64_t first = 0, count = 0;
          Walk(start, end, step, dim, &first, &count);
          const tessera::plugin::SliceAxis got = tessera::plugin::ResolveSliceAxis(start, end, step, dim);
          ASSERT_EQ(got.count, count) << "dim " << dim << " start " << start << " end " << end << " step " << step;
          if (count > 0) {
            ASSERT_EQ(got.first, first) << "dim " << dim << " start " << start << " end " << end << " step " << step;
          }
        }
}

TEST(PluginSliceAxis, EdgeCases) {
  using tessera::plugin::ResolveSliceAxis;
  EXPECT_EQ(ResolveSliceAxis(0, 5, -1, 0).count, 0);  // empty axis, negative step: no clamp to [0, -1]
  EXPECT_EQ(ResolveSliceAxis(INT64_MAX, INT64_MIN, -1, 4).count, 4);  // the whole axis reversed
  EXPECT_EQ(ResolveSliceAxis(INT64_MAX, INT64_MIN, -1, 4).first, 3);
  EXPECT_EQ(ResolveSliceAxis(INT64_MIN, INT64_MAX, 2, 5).count, 3);   // 0, 2, 4
}

}  // namespace

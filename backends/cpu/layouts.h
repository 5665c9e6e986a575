// CPU backend side of layout negotiation (backend.h `choose_layouts`,
// compiler/assign_layouts.h). Implemented in kernels_layout.cpp, next to the
// oneDNN kernels that read and write non-plain layouts:
//   Conv, tessera.FusedConv (rank 3-5, f32/bf16): prefer the dst layout oneDNN's
//     convolution picks with format_tag::any (oneDNN 2.6 on AVX-512: nhwc);
//     accept X and the residual Z in any layout;
//   MaxPool (without Indices), AveragePool (f32/bf16): accept X in any
//     layout and prefer Y in X's preferred layout.
// Every other node reads and writes plain row-major memory.
#pragma once

#include "backends/cpu/kernel.h"

namespace tessera::cpu {

// Fills out_values[num_values] and out_accepts[sum of num_inputs] (both
// zero-filled by the caller) for a segment with static shapes.
Err ChooseLayouts(const tsr_graph_view& seg, tsr_layout_choice* out_values, uint8_t* out_accepts);

}  // namespace tessera::cpu

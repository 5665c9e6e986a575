// CPU backend side of layout negotiation (backend.h `choose_layouts`,
// compiler/assign_layouts.h). Implemented in kernels_layout.cpp, next to the
// oneDNN kernels that read and write non-plain layouts:
//   Conv, tessera.FusedConv (rank 3-5, f32/bf16): prefer a dst layout by
//     ConvLayoutMode (below): oneDNN's format_tag::any pick (oneDNN 2.6 on
//     AVX-512: nhwc), or the 16-channel blocked layout (nChw16c, nCw16c,
//     nCdhw16c; channel counts are padded to a multiple of 16 and the buffer
//     bytes say so) when it fits; accept X and the residual Z in any layout;
//   MaxPool (without Indices), AveragePool (f32/bf16): accept X in any
//     layout and prefer Y in X's preferred layout.
// Every other node reads and writes plain row-major memory.
#pragma once

#include "backends/cpu/kernel.h"

namespace tessera::cpu {

// Which layout convolutions write (ChooseLayouts). The environment variable
// TESSERA_CPU_CONV_LAYOUT, read once per process, overrides the default for
// A/B measurements:
//   "blocked": nChw16c (or the rank's 16c variant) for ungrouped convs (any
//     channel count, padded to whole blocks), grouped convs with whole blocks
//     per group and depthwise convs, where oneDNN has a non-reference
//     implementation reading X as it arrives; oneDNN's pick elsewhere;
//   "nhwc" (alias "any"): always oneDNN's format_tag::any pick.
// Anything else (or unset) means kDefaultConvLayoutMode.
enum class ConvLayoutMode { kDefault, kOneDnnPick, kBlocked };
inline constexpr ConvLayoutMode kDefaultConvLayoutMode = ConvLayoutMode::kBlocked;
ConvLayoutMode ConvLayoutFromEnv();

// Fills out_values[num_values] and out_accepts[sum of num_inputs] (both
// zero-filled by the caller) for a segment with static shapes.
Err ChooseLayouts(const tsr_graph_view& seg, tsr_layout_choice* out_values, uint8_t* out_accepts);
// The same with an explicit mode (kDefault = kDefaultConvLayoutMode); for tests.
Err ChooseLayouts(const tsr_graph_view& seg, ConvLayoutMode mode, tsr_layout_choice* out_values, uint8_t* out_accepts);

}  // namespace tessera::cpu

// Tensor types written as text in schema tests: "f32[1,batch,?]" (known,
// symbolic and unknown dims), "f32[*]" (unknown rank), "?" (nothing known).
#pragma once

#include <cctype>
#include <sstream>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace tessera::testing {

inline TensorType ParseTensorType(const std::string& text) {
  if (text == "?") return TensorType{};
  size_t lb = text.find('[');
  TensorType t;
  t.dtype = DTypeFromName(text.substr(0, lb));
  std::string body = text.substr(lb + 1, text.size() - lb - 2);
  if (body == "*") return t;
  std::vector<Dim> dims;
  std::stringstream ss(body);
  std::string item;
  while (!body.empty() && std::getline(ss, item, ',')) {
    if (item == "?") dims.push_back(Dim::Unknown());
    else if (isdigit(static_cast<unsigned char>(item[0]))) dims.push_back(Dim::Known(std::stoll(item)));
    else dims.push_back(Dim::Symbol(item));
  }
  t.shape = Shape(std::move(dims));
  return t;
}

}  // namespace tessera::testing

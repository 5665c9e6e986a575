// safetensors reader/writer (see safetensors.h for the format and contract).
//
// Layout written: u64 LE header length N, N bytes of JSON (the "__metadata__"
// object first, then the tensors in the caller's order with contiguous
// data_offsets), padded with spaces so that 8 + N is a multiple of 8 (as the
// reference implementation does), then the tensor bytes back to back.
//
// Reading accepts what the reference implementation accepts: the tensors'
// byte ranges, sorted by offset, must tile the data section exactly (no gap,
// no overlap, nothing after the last one). Nothing read from the file is
// trusted before it has been checked against the file size, so a malformed
// or truncated file yields InvalidArgument and never a large allocation.
#include "runtime/safetensors.h"

#include "runtime/file_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

namespace tessera {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

// The reference implementation's cap on the JSON header (100 MB).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

struct DTypeEntry {
  const char* name;
  DType dtype;
};
constexpr DTypeEntry kDTypes[] = {
    {"F64", DType::kF64}, {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16},
    {"I64", DType::kI64}, {"I32", DType::kI32}, {"I16", DType::kI16}, {"I8", DType::kI8},
    {"U8", DType::kU8},   {"BOOL", DType::kBool},
};

const char* SafetensorsDTypeName(DType t) {
  for (const auto& e : kDTypes)
    if (e.dtype == t) return e.name;
  return nullptr;
}

DType SafetensorsDTypeFromName(const std::string& s) {
  for (const auto& e : kDTypes)
    if (s == e.name) return e.dtype;
  return DType::kUndefined;
}

}  // namespace

const Tensor* SafetensorsContents::Find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

Status WriteSafetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  const std::string where = StrCat("safetensors file '", path, "'");
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json m = ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header[kMetadataKey] = std::move(m);
  }
  std::unordered_set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) return InvalidArgument(where, ": a tensor has an empty name");
    if (name == kMetadataKey) return InvalidArgument(where, ": the tensor name '", name, "' is reserved");
    if (!seen.insert(name).second) return InvalidArgument(where, ": duplicate tensor name '", name, "'");
    if (t == nullptr || !t->defined()) return InvalidArgument(where, ": tensor '", name, "' is null/undefined");
    const char* dt = SafetensorsDTypeName(t->dtype());
    if (dt == nullptr)
      return InvalidArgument(where, ": tensor '", name, "' has dtype ", DTypeName(t->dtype()),
                             ", which safetensors checkpoints do not support (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    auto nb = CheckedByteSize(t->dims(), t->dtype());
    if (!nb.ok()) return InvalidArgument(where, ": tensor '", name, "' has a negative or overflowing shape");
    const uint64_t nbytes = static_cast<uint64_t>(*nb);
    if (nbytes != t->nbytes() || (nbytes > 0 && t->raw() == nullptr))
      return InvalidArgument(where, ": tensor '", name, "' holds ", t->nbytes(), " bytes but its shape needs ", nbytes);
    ordered_json info = ordered_json::object();
    info["dtype"] = dt;
    info["shape"] = t->dims();
    info["data_offsets"] = {offset, offset + nbytes};
    header[name] = std::move(info);
    offset += nbytes;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const std::exception& e) {  // invalid UTF-8 in a name or metadata value
    return InvalidArgument(where, ": cannot encode the header: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len_le[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len_le[i] = static_cast<unsigned char>(n >> (8 * i));

  std::vector<std::pair<const void*, size_t>> pieces = {{len_le, 8}, {text.data(), text.size()}};
  for (const auto& [name, t] : tensors) pieces.push_back({t->raw(), t->nbytes()});
  return WriteFileAtomic(path, pieces, where);
}

Result<SafetensorsContents> ReadSafetensors(const std::string& path) {
  const std::string where = StrCat("safetensors file '", path, "'");
  std::error_code ec;
  if (!fs::exists(path, ec)) return NotFound(where, " does not exist");
  if (fs::is_directory(path, ec)) return InvalidArgument(where, " is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot open ", where);
  f.seekg(0, std::ios::end);
  const std::streamoff file_size_signed = f.tellg();
  if (file_size_signed < 0) return IoError("cannot size ", where);
  const uint64_t file_size = static_cast<uint64_t>(file_size_signed);
  f.seekg(0, std::ios::beg);
  if (file_size < 8) return InvalidArgument(where, " is ", file_size, " bytes, too short for the 8-byte header length");

  unsigned char len_le[8];
  if (!f.read(reinterpret_cast<char*>(len_le), 8)) return IoError("cannot read ", where);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(len_le[i]) << (8 * i);
  if (header_len > kMaxHeaderBytes)
    return InvalidArgument(where, ": header length ", header_len, " exceeds the ", kMaxHeaderBytes, "-byte limit");
  if (header_len > file_size - 8)
    return InvalidArgument(where, ": header length ", header_len, " runs past the end of the file (", file_size,
                           " bytes)");
  if (header_len < 2) return InvalidArgument(where, ": header length ", header_len, " is too short for a JSON object");
  std::string text(header_len, '\0');
  if (!f.read(text.data(), static_cast<std::streamsize>(header_len))) return IoError("cannot read ", where);
  if (text[0] != '{') return InvalidArgument(where, ": the header does not start with '{'");

  // Duplicate top-level keys would silently overwrite each other in the
  // parsed object; the callback sees every key as it is read.
  std::unordered_set<std::string> keys;
  std::string duplicate;
  auto cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!keys.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, cb, /*allow_exceptions=*/false);
  } catch (const std::exception& e) {
    return InvalidArgument(where, ": the header is not valid JSON: ", e.what());
  }
  if (header.is_discarded()) return InvalidArgument(where, ": the header is not valid JSON");
  if (!header.is_object()) return InvalidArgument(where, ": the header is not a JSON object");
  if (!duplicate.empty()) return InvalidArgument(where, ": duplicate entry '", duplicate, "' in the header");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;
  SafetensorsContents out;

  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> dims;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == kMetadataKey) {
      if (!v.is_object()) return InvalidArgument(where, ": \"__metadata__\" is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return InvalidArgument(where, ": metadata entry '", m.key(), "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string tw = StrCat(where, ": tensor '", name, "'");
    if (name.empty()) return InvalidArgument(where, ": a tensor has an empty name");
    if (!v.is_object()) return InvalidArgument(tw, " is not described by a JSON object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || sh == v.end() || off == v.end())
      return InvalidArgument(tw, " lacks one of \"dtype\", \"shape\", \"data_offsets\"");
    if (!dt->is_string()) return InvalidArgument(tw, ": \"dtype\" is not a string");
    Entry e;
    e.name = name;
    e.dtype = SafetensorsDTypeFromName(dt->get<std::string>());
    if (e.dtype == DType::kUndefined)
      return InvalidArgument(tw, " has unsupported dtype \"", dt->get<std::string>(),
                             "\" (expected F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    if (!sh->is_array()) return InvalidArgument(tw, ": \"shape\" is not an array");
    for (const json& d : *sh) {
      if (!d.is_number_integer() || (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0))
        return InvalidArgument(tw, ": \"shape\" must hold non-negative integers, got ", d.dump());
      if (d.is_number_unsigned() && d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return InvalidArgument(tw, ": shape dim ", d.dump(), " is too large");
      e.dims.push_back(d.get<int64_t>());
    }
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
      return InvalidArgument(tw, ": \"data_offsets\" must be [begin, end] with non-negative integers");
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end) return InvalidArgument(tw, ": data_offsets [", e.begin, ", ", e.end, "] are reversed");
    if (e.end > data_size)
      return InvalidArgument(tw, ": data_offsets [", e.begin, ", ", e.end, "] run past the data section (", data_size,
                             " bytes; is the file truncated?)");
    auto nb = CheckedByteSize(e.dims, e.dtype);
    if (!nb.ok()) return InvalidArgument(tw, ": the shape's byte size overflows");
    const uint64_t need = static_cast<uint64_t>(*nb);
    if (need != e.end - e.begin)
      return InvalidArgument(tw, ": data_offsets span ", e.end - e.begin, " bytes but ",
                             SafetensorsDTypeName(e.dtype), " ", Shape::FromInts(e.dims).ToString(), " needs ", need);
    entries.push_back(std::move(e));
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  uint64_t cursor = 0;
  for (const Entry& e : entries) {
    if (e.begin < cursor)
      return InvalidArgument(where, ": tensor '", e.name, "' data_offsets [", e.begin, ", ", e.end,
                             "] overlap the previous tensor (which ends at ", cursor, ")");
    if (e.begin > cursor)
      return InvalidArgument(where, ": tensor '", e.name, "' starts at ", e.begin, ", leaving a gap after byte ",
                             cursor, " of the data section");
    cursor = e.end;
  }
  if (cursor != data_size)
    return InvalidArgument(where, ": the data section has ", data_size, " bytes but the tensors cover ", cursor);

  f.seekg(static_cast<std::streamoff>(data_start), std::ios::beg);
  out.tensors.reserve(entries.size());
  for (Entry& e : entries) {
    auto z = Tensor::Zeros(e.dtype, e.dims);
    if (!z.ok()) return z.status().WithContext(StrCat(where, ": tensor '", e.name, "'"));
    Tensor t = std::move(z).value();
    if (t.nbytes() > 0 && !f.read(static_cast<char*>(t.mutable_raw()), static_cast<std::streamsize>(t.nbytes())))
      return IoError("cannot read tensor '", e.name, "' of ", where);
    if (e.dtype == DType::kBool) {
      const uint8_t* b = t.data<uint8_t>();
      for (size_t i = 0; i < t.nbytes(); ++i)
        if (b[i] > 1)
          return InvalidArgument(where, ": tensor '", e.name, "' (BOOL) holds byte ", static_cast<int>(b[i]),
                                 " at element ", i, "; booleans must be 0 or 1");
    }
    out.tensors.emplace_back(std::move(e.name), std::move(t));
  }
  return out;
}

}  // namespace tessera

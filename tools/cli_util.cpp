#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "cli.h"

namespace tessera::cli {

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "tessera: error: %s\n", message.c_str());
  return code;
}

void Note(const std::string& message) { std::fprintf(stderr, "tessera: note: %s\n", message.c_str()); }

bool IsError(tsr_status_t* s, int32_t* code, std::string* message) {
  StatusPtr owned(s);
  if (!s) return false;
  if (code) *code = tsr_status_code(s);
  if (message) {
    const char* m = tsr_status_message(s);
    *message = (m && *m) ? m : "(no message)";
  }
  return true;
}

const char* CodeName(int32_t code) {
  switch (code) {
    case TSR_OK: return "OK";
    case TSR_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case TSR_ERR_NOT_FOUND: return "NOT_FOUND";
    case TSR_ERR_UNSUPPORTED: return "UNSUPPORTED";
    case TSR_ERR_OUT_OF_RANGE: return "OUT_OF_RANGE";
    case TSR_ERR_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case TSR_ERR_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case TSR_ERR_INTERNAL: return "INTERNAL";
    case TSR_ERR_NO_DEVICE: return "NO_DEVICE";
    case TSR_ERR_IO: return "IO";
    default: return "UNKNOWN";
  }
}

int ExitCodeForCreate(int32_t code) {
  switch (code) {
    case TSR_ERR_INVALID_ARGUMENT:
    case TSR_ERR_NOT_FOUND:
    case TSR_ERR_UNSUPPORTED:
    case TSR_ERR_OUT_OF_RANGE:
      return kExitUsage;
    default:
      return kExitFailure;
  }
}

// ---------------------------------------------------------------------------------------------
// Arguments

std::string Args::Get(const std::string& flag, const std::string& fallback) const {
  auto it = values.find(flag);
  if (it == values.end() || it->second.empty()) return fallback;
  return it->second.back();
}

const std::vector<std::string>& Args::All(const std::string& flag) const {
  static const std::vector<std::string> kEmpty;
  auto it = values.find(flag);
  return it == values.end() ? kEmpty : it->second;
}

int ParseArgs(const std::string& cmd, int argc, char** argv, int first, const std::vector<FlagSpec>& specs,
              Args* out) {
  auto find = [&](const std::string& name) -> const FlagSpec* {
    for (const FlagSpec& s : specs)
      if (s.name == name || (!s.short_name.empty() && s.short_name == name)) return &s;
    return nullptr;
  };
  const std::string hint = " (see 'tessera " + cmd + " --help')";
  bool only_positional = false;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (only_positional || a.size() < 2 || a[0] != '-') {
      out->positional.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      out->help = true;
      continue;
    }
    std::string name = a, value;
    bool has_inline = false;
    if (a.rfind("--", 0) == 0) {
      size_t eq = a.find('=');
      if (eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        has_inline = true;
      }
    }
    const FlagSpec* spec = find(name);
    if (!spec) return Fail(kExitUsage, cmd + ": unknown option '" + name + "'" + hint);
    if (spec->takes_value) {
      if (!has_inline) {
        if (i + 1 >= argc) return Fail(kExitUsage, cmd + ": option '" + name + "' needs a value" + hint);
        value = argv[++i];
        // "--inputs --check D" is a forgotten value, not a folder named "--check".
        if (value.size() > 2 && value.rfind("--", 0) == 0)
          return Fail(kExitUsage, cmd + ": option '" + name + "' needs a value, got the option '" + value + "'" +
                                      hint);
      }
    } else if (has_inline) {
      return Fail(kExitUsage, cmd + ": option '" + name + "' takes no value" + hint);
    }
    auto& slot = out->values[spec->name];
    if (!slot.empty() && !spec->repeatable)
      return Fail(kExitUsage, cmd + ": option '" + spec->name + "' given more than once" + hint);
    slot.push_back(value);
  }
  return kExitOk;
}

int ParseInt(const std::string& flag, const std::string& text, int64_t min_value, int64_t* out) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || !end || *end != '\0' || v < min_value)
    return Fail(kExitUsage, flag + " expects an integer >= " + std::to_string(min_value) + ", got '" + text + "'");
  *out = static_cast<int64_t>(v);
  return kExitOk;
}

int ParseDouble(const std::string& flag, const std::string& text, double min_value, double* out) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || !end || *end != '\0' || !std::isfinite(v) || v < min_value) {
    std::ostringstream os;
    os << flag << " expects a number >= " << min_value << ", got '" << text << "'";
    return Fail(kExitUsage, os.str());
  }
  *out = v;
  return kExitOk;
}

namespace {

int SetOption(tsr_options_t* options, const std::string& key, const std::string& value, const std::string& flag) {
  int32_t code = 0;
  std::string msg;
  if (IsError(tsr_options_set(options, key.c_str(), value.c_str()), &code, &msg))
    return Fail(kExitUsage, flag + " " + value + ": " + msg);
  return kExitOk;
}

bool ValidDimName(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x21 || c == '=') return false;
  return true;
}

}  // namespace

int BuildOptions(const Args& args, OptionsPtr* out, std::map<std::string, int64_t>* dims) {
  tsr_options_t* raw = nullptr;
  int32_t code = 0;
  std::string msg;
  if (IsError(tsr_options_create(&raw), &code, &msg)) return Fail(kExitFailure, "cannot create options: " + msg);
  OptionsPtr options(raw);
  int rc;
  // The config file first: every explicit flag below overrides what it sets.
  if (args.Has("--config")) {
    if (IsError(tsr_options_set(raw, "config", args.Get("--config").c_str()), &code, &msg))
      return Fail(kExitUsage, "--config: " + msg);  // msg starts with FILE:LINE:COL
    // The file's dim bindings size generated inputs too (--dim overrides them below).
    char* raw_json = nullptr;
    if (dims && !IsError(tsr_options_json(raw, &raw_json), &code, &msg)) {
      StringPtr owned(raw_json);
      json j = json::parse(raw_json ? raw_json : "", nullptr, /*allow_exceptions=*/false);
      if (j.is_object())
        for (auto& [k, v] : j.items()) {
          int64_t n = 0;
          if (k.rfind("dim.", 0) == 0 && v.is_string() && ParseInt("--config dim", v.get<std::string>(), 0, &n) == 0)
            (*dims)[k.substr(4)] = n;
        }
    }
  }
  if (args.Has("--device") && (rc = SetOption(raw, "devices", args.Get("--device"), "--device"))) return rc;
  if (args.Has("--threads")) {
    int64_t n = 0;
    if ((rc = ParseInt("--threads", args.Get("--threads"), 1, &n))) return rc;
    if ((rc = SetOption(raw, "threads", std::to_string(n), "--threads"))) return rc;
  }
  if (args.Has("--opt-level") && (rc = SetOption(raw, "opt_level", args.Get("--opt-level"), "--opt-level")))
    return rc;
  if (args.Has("--precision") && (rc = SetOption(raw, "precision", args.Get("--precision"), "--precision")))
    return rc;
  if (args.Has("--dump-after") && (rc = SetOption(raw, "dump_after", args.Get("--dump-after"), "--dump-after")))
    return rc;
  if (args.Has("--strict") && (rc = SetOption(raw, "strict", "1", "--strict"))) return rc;
  if (args.Has("--max-alloc-bytes") &&
      (rc = SetOption(raw, "max_alloc_bytes", args.Get("--max-alloc-bytes"), "--max-alloc-bytes")))
    return rc;
  for (const std::string& spec : args.All("--dim")) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos)
      return Fail(kExitUsage, "--dim expects NAME=N (e.g. --dim batch=8), got '" + spec + "'");
    std::string name = spec.substr(0, eq), value = spec.substr(eq + 1);
    if (!ValidDimName(name))
      return Fail(kExitUsage, "--dim expects NAME=N with a non-empty NAME, got '" + spec + "'");
    int64_t v = 0;
    if ((rc = ParseInt("--dim " + name, value, 1, &v))) return rc;
    if (dims) (*dims)[name] = v;
    if ((rc = SetOption(raw, "dim." + name, std::to_string(v), "--dim"))) return rc;
  }
  *out = std::move(options);
  return kExitOk;
}

int CheckModelPath(const std::string& path) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) return Fail(kExitUsage, "model file not found: " + path);
  if (!std::filesystem::is_regular_file(st)) return Fail(kExitUsage, "model path is not a file: " + path);
  return kExitOk;
}

int CreateSession(const std::string& path, const tsr_options_t* options, SessionPtr* out, double* out_ms) {
  if (int rc = CheckModelPath(path)) return rc;
  tsr_session_t* raw = nullptr;
  auto t0 = std::chrono::steady_clock::now();
  tsr_status_t* s = tsr_session_create_from_file(path.c_str(), options, &raw);
  auto t1 = std::chrono::steady_clock::now();
  int32_t code = 0;
  std::string msg;
  if (IsError(s, &code, &msg)) {
    if (raw) tsr_session_free(raw);
    return Fail(ExitCodeForCreate(code), path + ": " + msg);
  }
  if (!raw) return Fail(kExitFailure, path + ": the runtime returned no session and no error");
  out->reset(raw);
  if (out_ms) *out_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// I/O description

namespace {

using InfoFn = tsr_status_t* (*)(const tsr_session_t*, size_t, const char**, int32_t*, size_t*, const int64_t**,
                                 const char* const**);

int CollectInfo(tsr_session_t* session, size_t count, InfoFn fn, const char* what, std::vector<IoInfo>* out) {
  out->clear();
  for (size_t i = 0; i < count; ++i) {
    const char* name = nullptr;
    int32_t dtype = 0;
    size_t rank = 0;
    const int64_t* dims = nullptr;
    const char* const* dim_names = nullptr;
    int32_t code = 0;
    std::string msg;
    if (IsError(fn(session, i, &name, &dtype, &rank, &dims, &dim_names), &code, &msg))
      return Fail(kExitFailure, std::string("cannot query ") + what + " " + std::to_string(i) + ": " + msg);
    IoInfo io;
    io.name = name ? name : "";
    io.dtype = dtype;
    for (size_t d = 0; d < rank; ++d) {
      io.dims.push_back(dims ? dims[d] : -1);
      io.dim_names.push_back(dim_names && dim_names[d] ? dim_names[d] : "");
    }
    out->push_back(std::move(io));
  }
  return kExitOk;
}

}  // namespace

int GetIoInfo(tsr_session_t* session, std::vector<IoInfo>* inputs, std::vector<IoInfo>* outputs) {
  if (inputs) {
    if (int rc = CollectInfo(session, tsr_session_input_count(session), tsr_session_input_info, "input", inputs))
      return rc;
  }
  if (outputs) {
    if (int rc =
            CollectInfo(session, tsr_session_output_count(session), tsr_session_output_info, "output", outputs))
      return rc;
  }
  return kExitOk;
}

std::string ShapeString(const IoInfo& io) {
  std::string s = "[";
  for (size_t d = 0; d < io.dims.size(); ++d) {
    if (d) s += ", ";
    if (io.dims[d] >= 0)
      s += std::to_string(io.dims[d]);
    else
      s += io.dim_names[d].empty() ? "?" : io.dim_names[d];
  }
  return s + "]";
}

// ---------------------------------------------------------------------------------------------
// Tensors

const char* DtypeName(int32_t dtype) {
  switch (dtype) {
    case TSR_DTYPE_F32: return "float32";
    case TSR_DTYPE_U8: return "uint8";
    case TSR_DTYPE_I8: return "int8";
    case TSR_DTYPE_U16: return "uint16";
    case TSR_DTYPE_I16: return "int16";
    case TSR_DTYPE_I32: return "int32";
    case TSR_DTYPE_I64: return "int64";
    case TSR_DTYPE_STRING: return "string";
    case TSR_DTYPE_BOOL: return "bool";
    case TSR_DTYPE_F16: return "float16";
    case TSR_DTYPE_F64: return "float64";
    case TSR_DTYPE_U32: return "uint32";
    case TSR_DTYPE_U64: return "uint64";
    case TSR_DTYPE_BF16: return "bfloat16";
    case TSR_DTYPE_F8E4M3FN: return "float8e4m3fn";
    case TSR_DTYPE_F8E4M3FNUZ: return "float8e4m3fnuz";
    case TSR_DTYPE_F8E5M2: return "float8e5m2";
    case TSR_DTYPE_F8E5M2FNUZ: return "float8e5m2fnuz";
    case TSR_DTYPE_U4: return "uint4";
    case TSR_DTYPE_I4: return "int4";
    case TSR_DTYPE_F4E2M1: return "float4e2m1";
    case TSR_DTYPE_F8E8M0: return "float8e8m0";
    default: return "undefined";
  }
}

size_t DtypeSize(int32_t dtype) {
  switch (dtype) {
    case TSR_DTYPE_U8: case TSR_DTYPE_I8: case TSR_DTYPE_BOOL: return 1;
    // 8- and 4-bit types: one byte per element (4-bit ones unpacked, see tessera.h).
    case TSR_DTYPE_F8E4M3FN: case TSR_DTYPE_F8E4M3FNUZ: case TSR_DTYPE_F8E5M2: case TSR_DTYPE_F8E5M2FNUZ:
    case TSR_DTYPE_U4: case TSR_DTYPE_I4: case TSR_DTYPE_F4E2M1: case TSR_DTYPE_F8E8M0: return 1;
    case TSR_DTYPE_U16: case TSR_DTYPE_I16: case TSR_DTYPE_F16: case TSR_DTYPE_BF16: return 2;
    case TSR_DTYPE_F32: case TSR_DTYPE_I32: case TSR_DTYPE_U32: return 4;
    case TSR_DTYPE_I64: case TSR_DTYPE_U64: case TSR_DTYPE_F64: return 8;
    default: return 0;
  }
}

std::vector<int64_t> Dims(const tsr_tensor_t* t) {
  size_t rank = tsr_tensor_rank(t);
  const int64_t* d = tsr_tensor_dims(t);
  return std::vector<int64_t>(d, d + rank);
}

std::string DimsString(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

int64_t ElementCount(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

namespace {

float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while (!(mant & 0x400u));
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round-to-nearest-even float -> half, for values the generator makes ([-1, 1]).
uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xffu) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t h = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  if (exp >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  uint32_t h = static_cast<uint32_t>(exp) << 10 | mant >> 13;
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

uint16_t FloatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

template <typename T>
T Load(const void* base, size_t i) {
  T v;
  std::memcpy(&v, static_cast<const char*>(base) + i * sizeof(T), sizeof(T));
  return v;
}

// splitmix64: a fixed, portable generator, so generated inputs are the same everywhere.
struct Rng {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float Uniform() {  // [-1, 1)
    return static_cast<float>(static_cast<double>(Next() >> 11) * 0x1.0p-53 * 2.0 - 1.0);
  }
};

}  // namespace

double ElementAsDouble(const tsr_tensor_t* t, size_t i) {
  const void* p = tsr_tensor_data(const_cast<tsr_tensor_t*>(t));
  switch (tsr_tensor_dtype(t)) {
    case TSR_DTYPE_F32: return Load<float>(p, i);
    case TSR_DTYPE_F64: return Load<double>(p, i);
    case TSR_DTYPE_F16: return HalfToFloat(Load<uint16_t>(p, i));
    case TSR_DTYPE_BF16: {
      uint32_t bits = static_cast<uint32_t>(Load<uint16_t>(p, i)) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case TSR_DTYPE_U8: return Load<uint8_t>(p, i);
    case TSR_DTYPE_I8: return Load<int8_t>(p, i);
    case TSR_DTYPE_U16: return Load<uint16_t>(p, i);
    case TSR_DTYPE_I16: return Load<int16_t>(p, i);
    case TSR_DTYPE_I32: return Load<int32_t>(p, i);
    case TSR_DTYPE_I64: return static_cast<double>(Load<int64_t>(p, i));
    case TSR_DTYPE_U32: return Load<uint32_t>(p, i);
    case TSR_DTYPE_U64: return static_cast<double>(Load<uint64_t>(p, i));
    case TSR_DTYPE_BOOL: return Load<uint8_t>(p, i) ? 1.0 : 0.0;
    case TSR_DTYPE_U4: return Load<uint8_t>(p, i);
    case TSR_DTYPE_I4: return Load<int8_t>(p, i);
    // 8-bit and 4-bit floats compare by bit pattern (the CLI has no decoder for them).
    case TSR_DTYPE_F8E4M3FN: case TSR_DTYPE_F8E4M3FNUZ: case TSR_DTYPE_F8E5M2: case TSR_DTYPE_F8E5M2FNUZ:
    case TSR_DTYPE_F4E2M1: case TSR_DTYPE_F8E8M0: return Load<uint8_t>(p, i);
    default: return std::nan("");
  }
}

namespace {
size_t ValueCount(const tsr_tensor_t* t) {
  size_t es = DtypeSize(tsr_tensor_dtype(t));
  return es ? tsr_tensor_nbytes(t) / es : 0;
}
}  // namespace

std::string FirstValues(const tsr_tensor_t* t, size_t n) {
  size_t count = ValueCount(t);
  std::string s = "[";
  char buf[64];
  for (size_t i = 0; i < std::min(n, count); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.6g", i ? ", " : "", ElementAsDouble(t, i));
    s += buf;
  }
  if (count > n) s += ", ...";
  return s + "]";
}

json FirstValuesJson(const tsr_tensor_t* t, size_t n) {
  json a = json::array();
  size_t count = ValueCount(t);
  for (size_t i = 0; i < std::min(n, count); ++i) {
    double v = ElementAsDouble(t, i);
    if (std::isfinite(v))
      a.push_back(v);
    else
      a.push_back(std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
  }
  return a;
}

int LoadInputs(const std::string& dir, const std::vector<IoInfo>& inputs, std::vector<TensorPtr>* out) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return Fail(kExitUsage, "--inputs: not a directory: " + dir);
  out->clear();
  for (size_t k = 0; k < inputs.size(); ++k) {
    const IoInfo& io = inputs[k];
    std::string path = (std::filesystem::path(dir) / ("input_" + std::to_string(k) + ".pb")).string();
    if (!std::filesystem::exists(path, ec))
      return Fail(kExitUsage, "--inputs: missing " + path + " for model input " + std::to_string(k) + " '" +
                                  io.name + "'");
    tsr_tensor_t* raw = nullptr;
    int32_t code = 0;
    std::string msg;
    if (IsError(tsr_tensor_load_pb(path.c_str(), &raw, nullptr), &code, &msg))
      return Fail(kExitUsage, "cannot load " + path + ": " + msg);
    TensorPtr t(raw);
    if (tsr_tensor_dtype(raw) != io.dtype)
      return Fail(kExitUsage, path + ": input '" + io.name + "' has dtype " + DtypeName(tsr_tensor_dtype(raw)) +
                                  ", the model expects " + DtypeName(io.dtype));
    std::vector<int64_t> dims = Dims(raw);
    bool ok = dims.size() == io.dims.size();
    for (size_t d = 0; ok && d < dims.size(); ++d) ok = io.dims[d] < 0 || io.dims[d] == dims[d];
    if (!ok)
      return Fail(kExitUsage, path + ": input '" + io.name + "' has shape " + DimsString(dims) +
                                  ", the model expects " + ShapeString(io));
    out->push_back(std::move(t));
  }
  return kExitOk;
}

int GenerateInputs(const std::vector<IoInfo>& inputs, const std::map<std::string, int64_t>& dims, uint64_t seed,
                   std::vector<TensorPtr>* out) {
  out->clear();
  Rng rng{seed};
  for (const IoInfo& io : inputs) {
    std::vector<int64_t> shape;
    for (size_t d = 0; d < io.dims.size(); ++d) {
      if (io.dims[d] >= 0) {
        shape.push_back(io.dims[d]);
        continue;
      }
      const std::string& sym = io.dim_names[d];
      auto it = dims.find(sym);
      if (it != dims.end()) {
        shape.push_back(it->second);
      } else {
        Note("input '" + io.name + "' dim " + std::to_string(d) + " is symbolic ('" + (sym.empty() ? "?" : sym) +
             "'); using 1 (set it with --dim " + (sym.empty() ? "NAME" : sym) + "=N)");
        shape.push_back(1);
      }
    }
    size_t es = DtypeSize(io.dtype);
    if (es == 0)
      return Fail(kExitUsage, "input '" + io.name + "' has dtype " + DtypeName(io.dtype) +
                                  ", which the tool cannot generate; pass --inputs DIR");
    tsr_tensor_t* raw = nullptr;
    int32_t code = 0;
    std::string msg;
    if (IsError(tsr_tensor_create(io.dtype, shape.data(), shape.size(), &raw), &code, &msg))
      return Fail(kExitFailure, "cannot create input '" + io.name + "' of shape " + DimsString(shape) + ": " + msg);
    TensorPtr t(raw);
    char* p = static_cast<char*>(tsr_tensor_data(raw));
    size_t n = tsr_tensor_nbytes(raw) / es;
    for (size_t i = 0; i < n; ++i) {
      char* e = p + i * es;
      switch (io.dtype) {
        case TSR_DTYPE_F32: { float v = rng.Uniform(); std::memcpy(e, &v, 4); break; }
        case TSR_DTYPE_F64: { double v = rng.Uniform(); std::memcpy(e, &v, 8); break; }
        case TSR_DTYPE_F16: { uint16_t v = FloatToHalf(rng.Uniform()); std::memcpy(e, &v, 2); break; }
        case TSR_DTYPE_BF16: { uint16_t v = FloatToBf16(rng.Uniform()); std::memcpy(e, &v, 2); break; }
        case TSR_DTYPE_BOOL: { e[0] = static_cast<char>(rng.Next() >> 63); break; }
        default: {  // integers in [0, 10), little-endian
          uint64_t v = rng.Next() % 10;
          std::memcpy(e, &v, es);
          break;
        }
      }
    }
    out->push_back(std::move(t));
  }
  return kExitOk;
}

int RunOnce(tsr_session_t* session, const std::vector<IoInfo>& in_info, const std::vector<TensorPtr>& inputs,
            size_t num_outputs, std::vector<TensorPtr>* outputs, double* out_ms) {
  std::vector<const char*> names;
  std::vector<const tsr_tensor_t*> ins;
  for (size_t i = 0; i < in_info.size(); ++i) {
    names.push_back(in_info[i].name.c_str());
    ins.push_back(inputs[i].get());
  }
  std::vector<tsr_tensor_t*> outs(num_outputs, nullptr);
  auto t0 = std::chrono::steady_clock::now();
  tsr_status_t* s = tsr_session_run(session, names.data(), ins.data(), ins.size(), nullptr, num_outputs, outs.data());
  auto t1 = std::chrono::steady_clock::now();
  int32_t code = 0;
  std::string msg;
  bool failed = IsError(s, &code, &msg);
  outputs->clear();
  for (tsr_tensor_t* o : outs) outputs->emplace_back(o);
  if (failed) return Fail(kExitFailure, "run failed (" + std::string(CodeName(code)) + "): " + msg);
  for (size_t i = 0; i < num_outputs; ++i)
    if (!(*outputs)[i]) return Fail(kExitFailure, "run returned no tensor for output " + std::to_string(i));
  if (out_ms) *out_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// JSON

namespace {
int FetchJson(tsr_status_t* s, char* raw, const char* what, json* out, std::string* text) {
  StringPtr owned(raw);
  int32_t code = 0;
  std::string msg;
  if (IsError(s, &code, &msg)) return Fail(kExitFailure, std::string(what) + " failed: " + msg);
  if (!raw) return Fail(kExitFailure, std::string(what) + " returned no JSON");
  if (text) *text = raw;
  *out = json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) return Fail(kExitFailure, std::string(what) + " returned invalid JSON");
  return kExitOk;
}
}  // namespace

int DescribeJson(tsr_session_t* session, json* out, std::string* raw) {
  char* s = nullptr;
  tsr_status_t* st = tsr_session_describe_json(session, &s);
  return FetchJson(st, s, "tsr_session_describe_json", out, raw);
}

int StatsJson(tsr_session_t* session, json* out) {
  char* s = nullptr;
  tsr_status_t* st = tsr_session_stats_json(session, &s);
  return FetchJson(st, s, "tsr_session_stats_json", out, nullptr);
}

std::map<std::string, int64_t> PlacementCounts(const json& d) {
  std::map<std::string, int64_t> counts;
  if (!d.is_object()) return counts;
  auto it = d.find("nodes");
  if (it != d.end() && it->is_array()) {
    for (const json& n : *it) {
      if (!n.is_object()) continue;
      auto dev = n.find("device");
      counts[dev != n.end() && dev->is_string() ? dev->get<std::string>() : std::string("(unplaced)")]++;
    }
    if (!counts.empty()) return counts;
  }
  it = d.find("placement");
  if (it != d.end() && it->is_object()) {
    for (auto& [k, v] : it->items()) {
      if (v.is_number_integer()) counts[k] += v.get<int64_t>();  // device -> count
      else if (v.is_string()) counts[v.get<std::string>()]++;    // node -> device
    }
    if (!counts.empty()) return counts;
  }
  it = d.find("segments");
  if (it != d.end() && it->is_array()) {
    for (const json& s : *it) {
      if (!s.is_object() || !s.contains("device") || !s["device"].is_string()) continue;
      auto nodes = s.find("nodes");
      int64_t n = 0;
      if (nodes != s.end() && nodes->is_array()) n = static_cast<int64_t>(nodes->size());
      else if (nodes != s.end() && nodes->is_number_integer()) n = nodes->get<int64_t>();
      else if (s.contains("node_count") && s["node_count"].is_number_integer()) n = s["node_count"].get<int64_t>();
      counts[s["device"].get<std::string>()] += n;
    }
  }
  return counts;
}

std::string PlacementString(const std::map<std::string, int64_t>& counts) {
  if (counts.empty()) return "(not reported)";
  std::string s;
  for (auto& [dev, n] : counts) s += (s.empty() ? "" : ", ") + dev + ": " + std::to_string(n) + " node" + (n == 1 ? "" : "s");
  return s;
}

std::string FormatMs(double ms) {
  char buf[64];
  std::snprintf(buf, sizeof buf, ms < 10 ? "%.3f ms" : (ms < 1000 ? "%.2f ms" : "%.1f ms"), ms);
  return buf;
}

std::string FormatBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}


int PrepareRun(const Args& args, const std::string& model, uint64_t seed, PreparedRun* p) {
  int rc;
  if ((rc = BuildOptions(args, &p->options, &p->dims))) return rc;
  if ((rc = CreateSession(model, p->options.get(), &p->session, &p->compile_ms))) return rc;
  if ((rc = GetIoInfo(p->session.get(), &p->in_info, &p->out_info))) return rc;
  if (args.Has("--inputs")) return LoadInputs(args.Get("--inputs"), p->in_info, &p->inputs);
  return GenerateInputs(p->in_info, p->dims, seed, &p->inputs);
}

}  // namespace tessera::cli

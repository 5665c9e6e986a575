// .npy files, the digits data set and row selection (see datasets.h).
#include "runtime/datasets.h"

#include "runtime/file_write.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string_view>

namespace tessera {
namespace {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, ".npy I/O assumes a little-endian host");

// ---------------------------------------------------------------------------
// .npy header: a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// parsed by a small recursive-descent reader of the literal subset numpy
// writes (dicts, tuples, lists, strings, integers, True/False/None).

struct PyValue {
  enum Kind { kNone, kBool, kInt, kStr, kTuple, kList, kDict } kind = kNone;
  bool b = false;
  int64_t i = 0;
  std::string s;
  std::vector<PyValue> items;  // kTuple / kList elements; kDict values
  std::vector<std::string> keys;  // kDict keys (strings only), parallel to items
};

class PyLiteralParser {
 public:
  explicit PyLiteralParser(const std::string& text) : t_(text) {}

  // Parses one value followed only by whitespace; error text in *err.
  bool ParseAll(PyValue* out, std::string* err) {
    if (!Value(out, 0)) {
      *err = err_;
      return false;
    }
    Skip();
    if (p_ != t_.size()) {
      *err = StrCat("unexpected text at offset ", p_);
      return false;
    }
    return true;
  }

 private:
  static constexpr int kMaxDepth = 16;

  void Skip() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
  }
  bool Fail(const std::string& m) {
    if (err_.empty()) err_ = StrCat(m, " at offset ", p_);
    return false;
  }
  bool Consume(char c) {
    Skip();
    if (p_ < t_.size() && t_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool Word(const char* w) {
    size_t n = std::strlen(w);
    if (t_.compare(p_, n, w) == 0) {
      p_ += n;
      return true;
    }
    return false;
  }

  bool String(std::string* out) {
    char q = t_[p_++];
    while (p_ < t_.size() && t_[p_] != q) {
      if (t_[p_] == '\\') {
        if (++p_ >= t_.size()) break;
      }
      out->push_back(t_[p_++]);
    }
    if (p_ >= t_.size()) return Fail("unterminated string");
    ++p_;
    return true;
  }

  bool Int(int64_t* out) {
    bool neg = false;
    if (t_[p_] == '-' || t_[p_] == '+') neg = t_[p_++] == '-';
    if (p_ >= t_.size() || t_[p_] < '0' || t_[p_] > '9') return Fail("expected a digit");
    uint64_t v = 0;
    while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') {
      if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - 9) / 10) return Fail("integer too large");
      v = v * 10 + static_cast<uint64_t>(t_[p_++] - '0');
    }
    if (p_ < t_.size() && (t_[p_] == 'L' || t_[p_] == 'l')) ++p_;  // Python 2 long suffix
    *out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }

  // Items up to `close`; a trailing comma is allowed.
  bool Sequence(char close, PyValue* out, int depth) {
    out->kind = close == ')' ? PyValue::kTuple : PyValue::kList;
    while (true) {
      if (Consume(close)) return true;
      PyValue v;
      if (!Value(&v, depth + 1)) return false;
      out->items.push_back(std::move(v));
      if (Consume(',')) continue;
      if (Consume(close)) return true;
      return Fail("expected ',' or closing bracket");
    }
  }

  bool Dict(PyValue* out, int depth) {
    out->kind = PyValue::kDict;
    while (true) {
      if (Consume('}')) return true;
      Skip();
      if (p_ >= t_.size() || (t_[p_] != '\'' && t_[p_] != '"')) return Fail("expected a string key");
      std::string key;
      if (!String(&key)) return false;
      if (!Consume(':')) return Fail("expected ':'");
      PyValue v;
      if (!Value(&v, depth + 1)) return false;
      for (const std::string& k : out->keys)
        if (k == key) return Fail(StrCat("duplicate key '", key, "'"));
      out->keys.push_back(std::move(key));
      out->items.push_back(std::move(v));
      if (Consume(',')) continue;
      if (Consume('}')) return true;
      return Fail("expected ',' or '}'");
    }
  }

  bool Value(PyValue* out, int depth) {
    if (depth > kMaxDepth) return Fail("nesting too deep");
    Skip();
    if (p_ >= t_.size()) return Fail("unexpected end");
    char c = t_[p_];
    if (c == '{') {
      ++p_;
      return Dict(out, depth);
    }
    if (c == '(' || c == '[') {
      ++p_;
      return Sequence(c == '(' ? ')' : ']', out, depth);
    }
    if (c == '\'' || c == '"') {
      out->kind = PyValue::kStr;
      return String(&out->s);
    }
    if (Word("True")) {
      out->kind = PyValue::kBool;
      out->b = true;
      return true;
    }
    if (Word("False")) {
      out->kind = PyValue::kBool;
      return true;
    }
    if (Word("None")) return true;
    out->kind = PyValue::kInt;
    return Int(&out->i);
  }

  const std::string& t_;
  size_t p_ = 0;
  std::string err_;
};

struct NpyType {
  const char* code;  // type char + size, without the byte-order char
  DType dtype;
};
constexpr NpyType kNpyTypes[] = {
    {"f4", DType::kF32}, {"f8", DType::kF64}, {"f2", DType::kF16}, {"i8", DType::kI64}, {"i4", DType::kI32},
    {"i2", DType::kI16}, {"i1", DType::kI8},  {"u1", DType::kU8},  {"u2", DType::kU16}, {"u4", DType::kU32},
    {"u8", DType::kU64}, {"b1", DType::kBool},
};

const char* NpyCode(DType t) {
  for (const auto& e : kNpyTypes)
    if (e.dtype == t) return e.code;
  return nullptr;
}

// ---------------------------------------------------------------------------
// digits.csv.gz

constexpr int64_t kDigitsRows = 1797;
// Split, stratified and interleaved: a row is "test" when it is the 5th, 10th,
// 15th, ... row of its class in file order (355 rows, 34-36 per class), else
// "train" (1442), both in file order. The file groups samples by writer, so a
// tail split would test on writers never seen in training (and every 5th row
// overall would skew the classes: the file cycles through the labels).
constexpr int64_t kDigitsTestEvery = 5;
constexpr int kDigitsPixels = 64;
constexpr const char* kDigitsSystemPath = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
constexpr size_t kMaxDigitsCsvBytes = size_t{16} << 20;  // the real file is ~460 KB decompressed

// A venv's sklearn copy: <dir>/.venv/lib/python3.*/site-packages/sklearn/...
std::optional<std::string> FindInVenv(const fs::path& dir) {
  std::error_code ec;
  fs::path lib = dir / ".venv" / "lib";
  if (!fs::is_directory(lib, ec)) return std::nullopt;
  for (fs::directory_iterator it(lib, ec), end; !ec && it != end; it.increment(ec)) {
    fs::path p = it->path() / "site-packages" / "sklearn" / "datasets" / "data" / "digits.csv.gz";
    if (it->path().filename().string().rfind("python", 0) == 0 && fs::is_regular_file(p, ec)) return p.string();
  }
  return std::nullopt;
}

Result<std::string> FindDigitsFile() {
  std::error_code ec;
  if (const char* env = std::getenv("TESSERA_DIGITS"); env && *env) {
    if (!fs::is_regular_file(env, ec))
      return NotFound("TESSERA_DIGITS is '", env, "', which is not a file (expected a path to digits.csv.gz)");
    return std::string(env);
  }
  if (fs::is_regular_file(kDigitsSystemPath, ec)) return std::string(kDigitsSystemPath);
  // A .venv in the working directory or one of its parents (tests run from
  // inside the build tree of a checkout that has one).
  fs::path dir = fs::current_path(ec);
  for (int i = 0; !ec && i < 8 && !dir.empty(); ++i) {
    if (auto p = FindInVenv(dir)) return *p;
    if (dir == dir.parent_path()) break;
    dir = dir.parent_path();
  }
  return NotFound("the digits data set (digits.csv.gz) was not found: install python3-sklearn "
                  "(apt-get install python3-sklearn), or scikit-learn in .venv, or set TESSERA_DIGITS to the "
                  "file's path");
}

Result<std::string> ReadGzip(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) return IoError("cannot open '", path, "'");
  std::string out;
  char buf[1 << 16];
  while (true) {
    int n = gzread(gz, buf, sizeof(buf));
    if (n < 0) {
      int errnum = 0;
      std::string msg = gzerror(gz, &errnum);
      gzclose(gz);
      return InvalidArgument("'", path, "' is not a readable gzip file: ", msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxDigitsCsvBytes) {
      gzclose(gz);
      return InvalidArgument("'", path, "' decompresses to more than ", kMaxDigitsCsvBytes,
                             " bytes; it is not the digits data set");
    }
  }
  gzclose(gz);
  return out;
}

Status CheckRowsInput(const Tensor& t, const char* fn) {
  if (!t.defined()) return InvalidArgument(fn, ": the tensor is undefined");
  if (t.dtype() == DType::kString) return Unsupported(fn, ": string tensors are not supported");
  if (t.rank() < 1) return InvalidArgument(fn, ": a scalar has no rows (need rank >= 1)");
  if (t.nbytes() != static_cast<size_t>(t.num_elements()) * DTypeSize(t.dtype()) || (t.nbytes() && !t.raw()))
    return InvalidArgument(fn, ": the tensor's byte size does not match its shape");
  return Status::Ok();
}

// Copies rows `rows` of `t` into a new tensor [rows.size(), t.dims()[1:]].
template <typename RowAt>
Result<Tensor> CopyRows(const Tensor& t, int64_t count, RowAt row_at, const char* fn) {
  std::vector<int64_t> dims = t.dims();
  const int64_t n = dims[0];
  dims[0] = count;
  auto z = Tensor::Zeros(t.dtype(), dims);
  if (!z.ok()) return z.status().WithContext(fn);
  Tensor out = std::move(z).value();
  if (out.nbytes() == 0) return out;
  const size_t row_bytes = t.nbytes() / static_cast<size_t>(n);
  const char* src = static_cast<const char*>(t.raw());
  char* dst = static_cast<char*>(out.mutable_raw());
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(dst + static_cast<size_t>(i) * row_bytes, src + static_cast<size_t>(row_at(i)) * row_bytes,
                row_bytes);
  return out;
}

}  // namespace

Result<Tensor> LoadNpy(const std::string& path) {
  const std::string where = StrCat(".npy file '", path, "'");
  std::error_code ec;
  if (!fs::exists(path, ec)) return NotFound(where, " does not exist");
  if (fs::is_directory(path, ec)) return InvalidArgument(where, " is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot open ", where);
  f.seekg(0, std::ios::end);
  const std::streamoff size_signed = f.tellg();
  if (size_signed < 0) return IoError("cannot size ", where);
  const uint64_t file_size = static_cast<uint64_t>(size_signed);
  f.seekg(0, std::ios::beg);

  unsigned char pre[12] = {};
  const uint64_t pre_len = std::min<uint64_t>(file_size, sizeof(pre));
  if (!f.read(reinterpret_cast<char*>(pre), static_cast<std::streamsize>(pre_len))) return IoError("cannot read ", where);
  if (file_size < 10 || std::memcmp(pre, "\x93NUMPY", 6) != 0)
    return InvalidArgument(where, " is not a .npy file (no \\x93NUMPY magic)");
  const int major = pre[6], minor = pre[7];
  uint64_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = pre[8] | (uint64_t{pre[9]} << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (file_size < 12) return InvalidArgument(where, " is truncated inside its preamble");
    header_len = pre[8] | (uint64_t{pre[9]} << 8) | (uint64_t{pre[10]} << 16) | (uint64_t{pre[11]} << 24);
    header_start = 12;
  } else {
    return Unsupported(where, " has .npy format version ", major, ".", minor, " (supported: 1.0, 2.0, 3.0)");
  }
  if (header_len > file_size - header_start)
    return InvalidArgument(where, ": header length ", header_len, " runs past the end of the file (", file_size,
                           " bytes)");
  std::string header(header_len, '\0');
  f.seekg(static_cast<std::streamoff>(header_start), std::ios::beg);
  if (header_len && !f.read(header.data(), static_cast<std::streamsize>(header_len)))
    return IoError("cannot read ", where);

  PyValue dict;
  std::string perr;
  if (!PyLiteralParser(header).ParseAll(&dict, &perr))
    return InvalidArgument(where, ": cannot parse the header dict: ", perr);
  if (dict.kind != PyValue::kDict) return InvalidArgument(where, ": the header is not a dict");
  const PyValue *descr = nullptr, *fortran = nullptr, *shape = nullptr;
  for (size_t i = 0; i < dict.keys.size(); ++i) {
    const std::string& k = dict.keys[i];
    const PyValue& v = dict.items[i];
    if (k == "descr") descr = &v;
    else if (k == "fortran_order") fortran = &v;
    else if (k == "shape") shape = &v;
    else return InvalidArgument(where, ": unexpected header key '", k, "'");
  }
  if (!descr || !fortran || !shape)
    return InvalidArgument(where, ": the header lacks one of 'descr', 'fortran_order', 'shape'");
  if (descr->kind != PyValue::kStr)
    return Unsupported(where, ": structured dtypes (a list 'descr') are not supported");
  if (fortran->kind != PyValue::kBool) return InvalidArgument(where, ": 'fortran_order' is not True/False");
  if (shape->kind != PyValue::kTuple) return InvalidArgument(where, ": 'shape' is not a tuple");

  std::string d = descr->s;
  char order = '=';
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')) {
    order = d[0];
    d = d.substr(1);
  }
  DType dtype = DType::kUndefined;
  for (const auto& e : kNpyTypes)
    if (d == e.code) dtype = e.dtype;
  if (d == "O") return Unsupported(where, ": object arrays (dtype 'O', pickled Python objects) are not supported");
  if (dtype == DType::kUndefined)
    return Unsupported(where, ": dtype '", descr->s,
                       "' is not supported (f4 f8 f2 i8 i4 i2 i1 u8 u4 u2 u1 b1, little-endian)");
  if (order == '>' && DTypeSize(dtype) > 1)
    return Unsupported(where, ": big-endian data (dtype '", descr->s, "') is not supported; save it little-endian "
                       "(arr.astype(arr.dtype.newbyteorder('<')))");
  if (fortran->b)
    return Unsupported(where, ": Fortran-order arrays are not supported; save with np.ascontiguousarray(arr)");
  std::vector<int64_t> dims;
  for (const PyValue& v : shape->items) {
    if (v.kind != PyValue::kInt || v.i < 0)
      return InvalidArgument(where, ": 'shape' must be a tuple of non-negative integers");
    dims.push_back(v.i);
  }
  auto nb = CheckedByteSize(dims, dtype);
  if (!nb.ok()) return InvalidArgument(where, ": shape ", Shape::FromInts(dims).ToString(), " overflows");
  const uint64_t nbytes = static_cast<uint64_t>(*nb);
  const uint64_t data_size = file_size - header_start - header_len;
  if (data_size != nbytes)
    return InvalidArgument(where, ": has ", data_size, " bytes of data but ", descr->s, " ",
                           Shape::FromInts(dims).ToString(), " needs ", nbytes,
                           data_size < nbytes ? " (the file is truncated)" : "");
  auto z = Tensor::Zeros(dtype, dims);
  if (!z.ok()) return z.status().WithContext(where);
  Tensor t = std::move(z).value();
  if (nbytes && !f.read(static_cast<char*>(t.mutable_raw()), static_cast<std::streamsize>(nbytes)))
    return IoError("cannot read the data of ", where);
  if (dtype == DType::kBool) {
    const uint8_t* b = t.data<uint8_t>();
    for (size_t i = 0; i < nbytes; ++i)
      if (b[i] > 1) return InvalidArgument(where, ": bool element ", i, " holds byte ", int{b[i]}, " (not 0/1)");
  }
  return t;
}

Status SaveNpy(const std::string& path, const Tensor& t) {
  const std::string where = StrCat(".npy file '", path, "'");
  if (!t.defined()) return InvalidArgument("cannot write ", where, ": the tensor is undefined");
  const char* code = NpyCode(t.dtype());
  if (!code)
    return Unsupported("cannot write ", where, ": dtype ", DTypeName(t.dtype()), " has no .npy equivalent");
  auto nb = CheckedByteSize(t.dims(), t.dtype());
  const uint64_t nbytes = nb.ok() ? static_cast<uint64_t>(*nb) : 0;
  if (!nb.ok() || nbytes != t.nbytes() || (nbytes && !t.raw()))
    return InvalidArgument("cannot write ", where, ": the tensor holds ", t.nbytes(), " bytes, not matching its shape");
  std::string shape = "(";
  for (size_t i = 0; i < t.dims().size(); ++i) shape += StrCat(i ? ", " : "", t.dims()[i]);
  shape += t.dims().size() == 1 ? ",)" : ")";
  std::string dict = StrCat("{'descr': '", DTypeSize(t.dtype()) == 1 ? '|' : '<', code,
                            "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Version 1.0 (u16 header length) unless the header needs more; pad with
  // spaces and a final newline so the data starts on a 64-byte boundary.
  auto padded = [&](size_t pre) { return dict.size() + 1 + (64 - (pre + dict.size() + 1) % 64) % 64; };
  const int major = padded(10) <= 65535 ? 1 : 2;
  const size_t pre = major == 1 ? 10 : 12;
  const size_t hl = padded(pre);
  dict.append(hl - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::string head("\x93NUMPY", 6);
  head.push_back(static_cast<char>(major));
  head.push_back(0);
  for (size_t i = 0; i < pre - 8; ++i) head.push_back(static_cast<char>((hl >> (8 * i)) & 0xff));
  head += dict;

  return WriteFileAtomic(path, {{head.data(), head.size()}, {t.raw(), nbytes}}, where);
}

Result<Dataset> LoadDigits(const std::string& split, bool image_shape) {
  if (split != "train" && split != "test" && split != "all") {
    return InvalidArgument("digits: unknown split '", split, "' (expected \"train\", \"test\" or \"all\")");
  }
  TSR_ASSIGN_OR_RETURN(std::string path, FindDigitsFile());
  TSR_ASSIGN_OR_RETURN(std::string csv, ReadGzip(path));

  std::vector<float> pixels;
  std::vector<int64_t> labels;
  pixels.reserve(static_cast<size_t>(kDigitsRows) * kDigitsPixels);
  labels.reserve(kDigitsRows);
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < csv.size()) {
    size_t eol = csv.find('\n', pos);
    if (eol == std::string::npos) eol = csv.size();
    std::string_view line(csv.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::string lw = StrCat("digits file '", path, "' line ", line_no);
    if (static_cast<int64_t>(labels.size()) >= kDigitsRows)
      return InvalidArgument(lw, ": more than ", kDigitsRows, " rows");
    int field = 0;
    size_t p = 0;
    while (true) {
      size_t q = p;
      int64_t v = 0;
      while (q < line.size() && line[q] == ' ') ++q;
      size_t digits_start = q;
      while (q < line.size() && line[q] >= '0' && line[q] <= '9' && q - digits_start < 6)
        v = v * 10 + (line[q++] - '0');
      if (q == digits_start) return InvalidArgument(lw, ", field ", field + 1, ": expected a non-negative integer");
      while (q < line.size() && line[q] == ' ') ++q;
      if (q < line.size() && line[q] != ',')
        return InvalidArgument(lw, ", field ", field + 1, ": unexpected character '", line[q], "'");
      if (field < kDigitsPixels) {
        if (v > 16) return InvalidArgument(lw, ", field ", field + 1, ": pixel value ", v, " is outside 0..16");
        pixels.push_back(static_cast<float>(v) / 16.0f);
      } else if (field == kDigitsPixels) {
        if (v > 9) return InvalidArgument(lw, ": label ", v, " is outside 0..9");
        labels.push_back(v);
      } else {
        return InvalidArgument(lw, ": more than ", kDigitsPixels + 1, " fields");
      }
      ++field;
      if (q >= line.size()) break;
      p = q + 1;
    }
    if (field != kDigitsPixels + 1)
      return InvalidArgument(lw, ": ", field, " fields, expected ", kDigitsPixels + 1, " (64 pixels and a label)");
  }
  if (static_cast<int64_t>(labels.size()) != kDigitsRows)
    return InvalidArgument("digits file '", path, "' has ", labels.size(), " rows, expected ", kDigitsRows);

  std::vector<float> split_pixels;
  std::vector<int64_t> split_labels;
  int64_t seen[10] = {};  // rows of each class so far
  for (int64_t r = 0; r < kDigitsRows; ++r) {
    const int64_t label = labels[static_cast<size_t>(r)];
    const bool test_row = seen[label]++ % kDigitsTestEvery == kDigitsTestEvery - 1;
    if (split != "all" && (split == "test") != test_row) continue;
    split_pixels.insert(split_pixels.end(), pixels.begin() + r * kDigitsPixels, pixels.begin() + (r + 1) * kDigitsPixels);
    split_labels.push_back(labels[static_cast<size_t>(r)]);
  }
  const int64_t count = static_cast<int64_t>(split_labels.size());
  std::vector<int64_t> fdims = image_shape ? std::vector<int64_t>{count, 1, 8, 8}
                                           : std::vector<int64_t>{count, kDigitsPixels};
  Dataset ds;
  TSR_ASSIGN_OR_RETURN(ds.features, Tensor::FromBytes(DType::kF32, fdims, split_pixels.data(),
                                                      split_pixels.size() * sizeof(float)));
  TSR_ASSIGN_OR_RETURN(ds.labels, Tensor::FromBytes(DType::kI64, {count}, split_labels.data(),
                                                    split_labels.size() * sizeof(int64_t)));
  return ds;
}

Result<Tensor> TakeRows(const Tensor& t, int64_t begin, int64_t count) {
  TSR_RETURN_IF_ERROR(CheckRowsInput(t, "TakeRows"));
  if (begin < 0) return InvalidArgument("TakeRows: begin ", begin, " is negative");
  if (count < 0) return InvalidArgument("TakeRows: count ", count, " is negative");
  const int64_t n = t.dims()[0];
  if (n == 0) {
    if (count == 0) return CopyRows(t, 0, [](int64_t) { return int64_t{0}; }, "TakeRows");
    return InvalidArgument("TakeRows: cannot take ", count, " rows from a tensor with 0 rows");
  }
  const int64_t start = begin % n;
  return CopyRows(t, count, [&](int64_t i) { return (start + i % n) % n; }, "TakeRows");
}

Result<Tensor> GatherRows(const Tensor& t, const std::vector<int64_t>& index) {
  TSR_RETURN_IF_ERROR(CheckRowsInput(t, "GatherRows"));
  const int64_t n = t.dims()[0];
  for (size_t i = 0; i < index.size(); ++i)
    if (index[i] < 0 || index[i] >= n)
      return OutOfRange("GatherRows: index[", i, "] = ", index[i], " is outside [0, ", n, ")");
  return CopyRows(t, static_cast<int64_t>(index.size()), [&](int64_t i) { return index[static_cast<size_t>(i)]; },
                  "GatherRows");
}

}  // namespace tessera

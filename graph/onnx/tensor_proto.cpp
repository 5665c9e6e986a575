// TensorProto <-> Tensor conversion, shared by the importer and the exporter
// (they declare the two onnx_detail functions locally, since protobuf types
// must stay out of headers), plus the TensorProto file helpers.
#include "graph/onnx/tensor_proto.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <onnx/onnx_pb.h>

#include "graph/onnx/onnx_import.h"

static_assert(std::endian::native == std::endian::little,
              "ONNX raw_data is little-endian; big-endian hosts need byte swapping");

namespace tessera {
namespace onnx_detail {

// `label` names the tensor in messages (empty: "tensor '<name>'").
Result<Tensor> TensorFromProto(const onnx::TensorProto& p, const std::string& label, const std::string& model_dir,
                               const ImportOptions& opts);
Status TensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* p);
Result<std::string> ReadFileBytes(const std::string& path, const char* what);

namespace {

namespace fs = std::filesystem;

// Closes a file descriptor on scope exit.
struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

Result<int64_t> ParseNonNegative(const std::string& label, const std::string& key, const std::string& text) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < 0)
    return InvalidArgument(label, ": external_data '", key, "' is '", text, "', expected a non-negative integer");
  return v;
}

// True when `path` (already lexically free of "..") resolves inside `dir`.
bool IsInside(const std::string& real_file, const std::string& real_dir) {
  if (real_dir == "/") return real_file.size() > 1 && real_file[0] == '/';
  return real_file.size() > real_dir.size() && real_file.compare(0, real_dir.size(), real_dir) == 0 &&
         real_file[real_dir.size()] == '/';
}

std::string RealPath(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (!r) return {};
  std::string s(r);
  std::free(r);
  return s;
}

Result<Tensor> ReadExternalFile(const std::string& label, const std::string& location, int64_t offset,
                                int64_t length, DType dtype, const std::vector<int64_t>& dims,
                                const std::string& model_dir) {
  if (location.empty()) return InvalidArgument(label, ": external data has an empty 'location'");
  if (location.find('\0') != std::string::npos)
    return InvalidArgument(label, ": external data location contains a NUL byte");
  fs::path loc(location);
  if (loc.is_absolute() || loc.has_root_directory() || loc.has_root_name())
    return InvalidArgument(label, ": external data location '", location,
                           "' is an absolute path; it must be relative to the model's folder");
  for (const auto& part : loc) {
    if (part == "..")
      return InvalidArgument(label, ": external data location '", location, "' escapes the model's folder");
  }
  if (model_dir.empty())
    return InvalidArgument(label, ": has external data '", location, "' but the model's folder is unknown");
  const std::string full = (fs::path(model_dir) / loc).string();

  struct stat lst;
  if (::lstat(full.c_str(), &lst) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return InvalidArgument(label, ": external data file '", full, "' does not exist");
    return InvalidArgument(label, ": cannot stat external data file '", full, "': ", std::strerror(errno));
  }
  if (S_ISLNK(lst.st_mode))
    return InvalidArgument(label, ": external data file '", full, "' is a symbolic link; links are not followed");
  if (!S_ISREG(lst.st_mode))
    return InvalidArgument(label, ": external data file '", full, "' is not a regular file");
  const std::string real_dir = RealPath(model_dir);
  const std::string real_file = RealPath(full);
  if (real_dir.empty() || real_file.empty() || !IsInside(real_file, real_dir))
    return InvalidArgument(label, ": external data file '", full, "' resolves outside the model's folder '",
                           model_dir, "'");

  FdCloser fd{::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
  if (fd.fd < 0)
    return InvalidArgument(label, ": cannot open external data file '", full, "': ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != lst.st_dev || st.st_ino != lst.st_ino)
    return InvalidArgument(label, ": external data file '", full, "' changed while it was being opened");
  const int64_t file_size = static_cast<int64_t>(st.st_size);
  if (offset > file_size || length > file_size - offset)
    return InvalidArgument(label, ": external data offset ", offset, " + length ", length, " is beyond the end of '",
                           full, "' (", file_size, " bytes)");
  if (length == 0) return Tensor::Zeros(dtype, dims);

  // Map when the data starts on a 64-byte boundary (the alignment owned
  // tensors have); otherwise copy into an owned, aligned tensor.
  if (offset % 64 == 0) {
    const int64_t page = ::sysconf(_SC_PAGESIZE) > 0 ? ::sysconf(_SC_PAGESIZE) : 4096;
    const int64_t map_off = offset - offset % page;
    const size_t map_len = static_cast<size_t>(length + (offset - map_off));
    void* base = ::mmap(nullptr, map_len, PROT_READ, MAP_PRIVATE, fd.fd, static_cast<off_t>(map_off));
    if (base != MAP_FAILED) {
      // The mapping stays valid after close(); the keepalive unmaps it when
      // the last Tensor sharing it goes away.
      std::shared_ptr<const void> keep(base, [map_len](const void* q) { ::munmap(const_cast<void*>(q), map_len); });
      const char* data = static_cast<const char*>(base) + (offset - map_off);
      return Tensor::Borrow(dtype, dims, data, static_cast<size_t>(length), std::move(keep));
    }
  }
  TSR_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(dtype, dims));
  char* dst = static_cast<char*>(t.mutable_raw());
  int64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd.fd, dst + done, static_cast<size_t>(length - done), static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return IoError(label, ": cannot read external data file '", full, "': ",
                     n < 0 ? std::strerror(errno) : "unexpected end of file");
    done += n;
  }
  return t;
}

Result<Tensor> ReadExternal(const onnx::TensorProto& p, const std::string& label, DType dtype,
                            const std::vector<int64_t>& dims, int64_t nbytes, const std::string& model_dir,
                            const ImportOptions& opts) {
  if (dtype == DType::kString) return Unsupported(label, ": string tensors cannot be stored as external data");
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  bool has_location = false;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
      has_location = true;
    } else if (kv.key() == "offset") {
      TSR_ASSIGN_OR_RETURN(offset, ParseNonNegative(label, "offset", kv.value()));
    } else if (kv.key() == "length") {
      TSR_ASSIGN_OR_RETURN(length, ParseNonNegative(label, "length", kv.value()));
    }
    // "checksum" and unknown keys are ignored.
  }
  if (!has_location) return InvalidArgument(label, ": external data has no 'location'");
  if (length < 0) length = nbytes;
  if (length != nbytes)
    return InvalidArgument(label, ": external data length ", length, " does not match the tensor's ", nbytes,
                           " bytes (", DTypeName(dtype), Shape::FromInts(dims).ToString(), ")");
  if (opts.external_resolver) {
    Result<Tensor> r = opts.external_resolver(location, offset, length, dtype, dims);
    if (!r.ok()) return r.status().WithContext(label);
    if (r->dtype() != dtype || r->dims() != dims || static_cast<int64_t>(r->nbytes()) != nbytes)
      return InvalidArgument(label, ": external data resolver returned ", r->type().ToString(), ", expected ",
                             DTypeName(dtype), Shape::FromInts(dims).ToString());
    return r;
  }
  return ReadExternalFile(label, location, offset, length, dtype, dims, model_dir);
}

// Copies `count` elements of a repeated field into a tensor of `dtype`,
// converting each element with `conv` (which writes one element to `dst`).
template <typename Field, typename Conv>
Result<Tensor> FromTyped(const Field& field, DType dtype, const std::vector<int64_t>& dims, Conv conv) {
  TSR_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(dtype, dims));
  char* dst = static_cast<char*>(t.mutable_raw());
  const size_t es = DTypeSize(dtype);
  for (int i = 0; i < field.size(); ++i) conv(field.Get(i), dst + static_cast<size_t>(i) * es);
  return t;
}

Result<Tensor> SubByteFromProto(const onnx::TensorProto& p, const std::string& label, DType dtype,
                                const std::vector<int64_t>& dims, int64_t count, const std::string& model_dir,
                                const ImportOptions& opts) {
  const int64_t packed = static_cast<int64_t>(PackedByteSize(count));
  std::string bytes;
  Tensor ext;
  const uint8_t* src = nullptr;
  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    TSR_ASSIGN_OR_RETURN(ext, ReadExternal(p, label, DType::kU8, {packed}, packed, model_dir, opts));
    src = static_cast<const uint8_t*>(ext.raw());
  } else if (p.has_raw_data()) {
    if (static_cast<int64_t>(p.raw_data().size()) != packed)
      return InvalidArgument(label, ": raw_data has ", p.raw_data().size(), " bytes, ", DTypeName(dtype),
                             Shape::FromInts(dims).ToString(), " needs ", packed, " (two elements per byte)");
    src = reinterpret_cast<const uint8_t*>(p.raw_data().data());
  } else {
    if (p.int32_data_size() != packed)
      return InvalidArgument(label, ": has ", p.int32_data_size(), " entries in int32_data, ", DTypeName(dtype),
                             Shape::FromInts(dims).ToString(), " needs ", packed, " (one packed byte each)");
    bytes.resize(static_cast<size_t>(packed));
    for (int64_t i = 0; i < packed; ++i)
      bytes[static_cast<size_t>(i)] = static_cast<char>(static_cast<uint32_t>(p.int32_data(static_cast<int>(i))) & 0xffu);
    src = reinterpret_cast<const uint8_t*>(bytes.data());
  }
  TSR_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(dtype, dims));
  if (count > 0) UnpackNibbles(src, count, dtype, static_cast<uint8_t*>(t.mutable_raw()));
  return t;
}

const char* TypedFieldName(DType dt) {
  switch (dt) {
    case DType::kF32: return "float_data";
    case DType::kI64: return "int64_data";
    case DType::kF64: return "double_data";
    case DType::kU32: case DType::kU64: return "uint64_data";
    case DType::kString: return "string_data";
    default: return "int32_data";
  }
}

}  // namespace

Result<Tensor> TensorFromProto(const onnx::TensorProto& p, const std::string& label_in,
                               const std::string& model_dir, const ImportOptions& opts) {
  const std::string label = !label_in.empty() ? label_in
                            : p.name().empty() ? std::string("tensor")
                                               : StrCat("tensor '", p.name(), "'");
  if (p.has_segment()) return Unsupported(label, ": segmented tensors are not supported");
  const int32_t id = p.data_type();
  if (id == 0) return InvalidArgument(label, ": has no data type");
  if (!IsKnownDType(id)) {
    const auto* desc = onnx::TensorProto_DataType_descriptor()->FindValueByNumber(id);
    return Unsupported(label, ": data type ", id, desc ? StrCat(" (", desc->name(), ")") : std::string(),
                       " is not supported");
  }
  const DType dtype = static_cast<DType>(id);
  std::vector<int64_t> dims(p.dims().begin(), p.dims().end());
  for (int64_t d : dims)
    if (d < 0) return OutOfRange(label, ": negative dim ", d, " in dims ", Shape::FromInts(dims).ToString());
  Result<int64_t> count_r = CheckedNumElements(dims);
  if (!count_r.ok())
    return OutOfRange(label, ": the element count of dims ", Shape::FromInts(dims).ToString(), " overflows int64");
  const int64_t count = *count_r;
  const int64_t es = static_cast<int64_t>(DTypeSize(dtype));
  int64_t nbytes = 0;
  if (dtype == DType::kString) {
    for (const auto& s : p.string_data()) nbytes += static_cast<int64_t>(s.size());
  } else {
    if (count > std::numeric_limits<int64_t>::max() / es)
      return OutOfRange(label, ": the byte size of dims ", Shape::FromInts(dims).ToString(), " overflows int64");
    nbytes = count * es;
  }
  if (nbytes > opts.max_tensor_bytes)
    return OutOfMemory(label, ": ", nbytes, " bytes (", DTypeName(dtype), Shape::FromInts(dims).ToString(),
                       ") exceeds the cap of ", opts.max_tensor_bytes, " bytes per tensor");

  // Sub-byte types (i4/u4/f4e2m1) are packed two per byte in ONNX and held
  // unpacked (one per byte) in Tessera: read the packed bytes, then unpack.
  if (IsSubByteDType(dtype)) return SubByteFromProto(p, label, dtype, dims, count, model_dir, opts);

  if (p.data_location() == onnx::TensorProto::EXTERNAL)
    return ReadExternal(p, label, dtype, dims, nbytes, model_dir, opts);

  if (dtype == DType::kString) {
    if (p.string_data_size() != count)
      return InvalidArgument(label, ": has ", p.string_data_size(), " elements in string_data, shape ",
                             Shape::FromInts(dims).ToString(), " needs ", count);
    return Tensor::Strings(dims, std::vector<std::string>(p.string_data().begin(), p.string_data().end()));
  }
  if (p.has_raw_data()) {
    if (static_cast<int64_t>(p.raw_data().size()) != nbytes)
      return InvalidArgument(label, ": raw_data has ", p.raw_data().size(), " bytes, ", DTypeName(dtype),
                             Shape::FromInts(dims).ToString(), " needs ", nbytes);
    return Tensor::FromBytes(dtype, dims, p.raw_data().data(), p.raw_data().size());
  }

  int64_t have = 0;
  switch (dtype) {
    case DType::kF32: have = p.float_data_size(); break;
    case DType::kI64: have = p.int64_data_size(); break;
    case DType::kF64: have = p.double_data_size(); break;
    case DType::kU32: case DType::kU64: have = p.uint64_data_size(); break;
    default: have = p.int32_data_size(); break;
  }
  if (have != count)
    return InvalidArgument(label, ": has ", have, " elements in ", TypedFieldName(dtype), ", shape ",
                           Shape::FromInts(dims).ToString(), " of ", DTypeName(dtype), " needs ", count);
  switch (dtype) {
    case DType::kF32:
      return FromTyped(p.float_data(), dtype, dims, [](float v, char* d) { std::memcpy(d, &v, 4); });
    case DType::kF64:
      return FromTyped(p.double_data(), dtype, dims, [](double v, char* d) { std::memcpy(d, &v, 8); });
    case DType::kI64:
      return FromTyped(p.int64_data(), dtype, dims, [](int64_t v, char* d) { std::memcpy(d, &v, 8); });
    case DType::kU64:
      return FromTyped(p.uint64_data(), dtype, dims, [](uint64_t v, char* d) { std::memcpy(d, &v, 8); });
    case DType::kU32:
      return FromTyped(p.uint64_data(), dtype, dims, [](uint64_t v, char* d) {
        uint32_t x = static_cast<uint32_t>(v);
        std::memcpy(d, &x, 4);
      });
    case DType::kI32:
      return FromTyped(p.int32_data(), dtype, dims, [](int32_t v, char* d) { std::memcpy(d, &v, 4); });
    case DType::kI16: case DType::kU16: case DType::kF16: case DType::kBF16:
      // 16-bit types (f16/bf16 as their bit pattern) sit in the low 16 bits.
      return FromTyped(p.int32_data(), dtype, dims, [](int32_t v, char* d) {
        uint16_t x = static_cast<uint16_t>(static_cast<uint32_t>(v) & 0xffffu);
        std::memcpy(d, &x, 2);
      });
    case DType::kI8: case DType::kU8: case DType::kF8E4M3FN: case DType::kF8E4M3FNUZ: case DType::kF8E5M2:
    case DType::kF8E5M2FNUZ: case DType::kF8E8M0:
      return FromTyped(p.int32_data(), dtype, dims,
                       [](int32_t v, char* d) { *d = static_cast<char>(static_cast<uint32_t>(v) & 0xffu); });
    case DType::kBool:
      return FromTyped(p.int32_data(), dtype, dims, [](int32_t v, char* d) { *d = v != 0 ? 1 : 0; });
    default:
      return Unsupported(label, ": data type ", DTypeName(dtype), " is not supported");
  }
}

Status TensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  if (!t.defined()) return InvalidArgument("tensor '", name, "' is undefined and cannot be serialized");
  p->Clear();
  p->set_name(name);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  if (t.dtype() == DType::kString) {
    if (static_cast<int64_t>(t.strings().size()) != t.num_elements())
      return InvalidArgument("tensor '", name, "' has ", t.strings().size(), " strings, shape ",
                             Shape::FromInts(t.dims()).ToString(), " needs ", t.num_elements());
    for (const auto& s : t.strings()) p->add_string_data(s);
    return Status::Ok();
  }
  if (IsSubByteDType(t.dtype())) {  // unpacked in Tessera, packed in ONNX
    std::string packed(PackedByteSize(t.num_elements()), '\0');
    if (!packed.empty())
      PackNibbles(static_cast<const uint8_t*>(t.raw()), t.num_elements(), reinterpret_cast<uint8_t*>(packed.data()));
    p->set_raw_data(std::move(packed));
    return Status::Ok();
  }
  p->set_raw_data(t.raw(), t.nbytes());
  return Status::Ok();
}

// The whole file; NotFound when it does not exist. `what` names the kind of
// file in messages ("model", "tensor").
Result<std::string> ReadFileBytes(const std::string& path, const char* what) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) return NotFound(what, " file '", path, "' does not exist");
  if (!std::filesystem::is_regular_file(st)) return InvalidArgument(what, " file '", path, "' is not a regular file");
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot open ", what, " file '", path, "'");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return IoError("cannot read ", what, " file '", path, "'");
  return bytes;
}

}  // namespace onnx_detail

namespace {

std::string FolderOf(const std::string& path) {
  std::filesystem::path p = std::filesystem::absolute(std::filesystem::path(path));
  return p.parent_path().string();
}

}  // namespace

Result<Tensor> TensorFromProtoBytes(const void* data, size_t size, const std::string& model_dir,
                                    std::string* out_name) {
  if (size > static_cast<size_t>(INT_MAX))
    return InvalidArgument("TensorProto of ", size, " bytes exceeds protobuf's 2 GiB limit");
  onnx::TensorProto p;
  if (!p.ParseFromArray(data, static_cast<int>(size)))
    return InvalidArgument("data is not a valid TensorProto: protobuf parsing failed");
  if (!p.has_data_type()) return InvalidArgument("data is not a valid TensorProto: no data_type");
  if (out_name) *out_name = p.name();
  ImportOptions opts;
  return onnx_detail::TensorFromProto(p, "", model_dir, opts);
}

Result<Tensor> LoadTensorProtoFile(const std::string& path, std::string* out_name) {
  TSR_ASSIGN_OR_RETURN(std::string bytes, onnx_detail::ReadFileBytes(path, "tensor"));
  Result<Tensor> r = TensorFromProtoBytes(bytes.data(), bytes.size(), FolderOf(path), out_name);
  if (!r.ok()) return r.status().WithContext(StrCat("'", path, "'"));
  return r;
}

Status SaveTensorProtoFile(const std::string& path, const Tensor& t, const std::string& name) {
  onnx::TensorProto p;
  TSR_RETURN_IF_ERROR(onnx_detail::TensorToProto(t, name, &p));
  if (p.ByteSizeLong() > static_cast<size_t>(INT_MAX))
    return OutOfRange("tensor '", name, "' is too large for a TensorProto file (2 GiB limit)");
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError("cannot create tensor file '", path, "'");
  if (!p.SerializeToOstream(&f)) return IoError("cannot write tensor file '", path, "'");
  f.close();
  if (!f) return IoError("cannot write tensor file '", path, "'");
  return Status::Ok();
}

}  // namespace tessera

// safetensors checkpoints: round trips, the byte layout of the reference
// implementation, a file written by hand per the spec (as Python's
// `safetensors` writes it), and malformed files (each an InvalidArgument
// naming the file and the tensor; truncation/corruption never crashes).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/safetensors.h"

namespace tessera {
namespace {
namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // tmpfs when there is one: the corruption loops rewrite a file thousands
    // of times, which is slow on a journaling disk.
    std::error_code ec;
    fs::path base = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm")
                                                                                           : fs::temp_directory_path();
    dir_ = base /
           ("tsr_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string ReadBytes(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  static void WriteBytes(const std::string& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  // A file per the spec: u64 LE length, the header text, then `data`.
  static std::string Build(const std::string& header, const std::string& data, int64_t len_override = -1) {
    std::string out(8, '\0');
    uint64_t n = len_override >= 0 ? static_cast<uint64_t>(len_override) : header.size();
    for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + data;
  }
  // Expects ReadSafetensors on `bytes` to fail with InvalidArgument whose
  // message names the file and contains `needle`.
  void ExpectBad(const std::string& bytes, const std::string& needle) {
    std::string p = Path("bad.safetensors");
    WriteBytes(p, bytes);
    auto r = ReadSafetensors(p);
    ASSERT_FALSE(r.ok()) << "accepted a malformed file; expected an error mentioning " << needle;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
  }

  fs::path dir_;
};

Tensor Patterned(DType dt, std::vector<int64_t> dims, int seed) {
  Tensor t = Tensor::Zeros(dt, std::move(dims)).value();
  auto* b = static_cast<uint8_t*>(t.mutable_raw());
  for (size_t i = 0; i < t.nbytes(); ++i)
    b[i] = dt == DType::kBool ? static_cast<uint8_t>((i + seed) % 2) : static_cast<uint8_t>(i * 31 + seed * 7 + 1);
  return t;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.dims() == b.dims() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

TEST_F(SafetensorsTest, RoundTripsEveryDtypeInOrderWithMetadata) {
  const DType dts[] = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64,
                       DType::kI32, DType::kI16, DType::kI8,  DType::kU8,   DType::kBool};
  std::vector<Tensor> ts;
  std::vector<std::pair<std::string, const Tensor*>> in;
  int seed = 0;
  for (DType dt : dts) ts.push_back(Patterned(dt, {3, 5}, seed++));
  ts.push_back(Patterned(DType::kF32, {}, seed++));      // scalar
  ts.push_back(Patterned(DType::kF32, {0, 4}, seed++));  // empty
  ts.push_back(Patterned(DType::kI8, {7}, seed++));      // odd size: later offsets unaligned
  ts.push_back(Patterned(DType::kF64, {2, 1, 3}, seed++));
  // Names deliberately not in alphabetical order: file order must be kept.
  for (size_t i = 0; i < ts.size(); ++i) in.emplace_back("t" + std::to_string(ts.size() - i) + "." + DTypeName(ts[i].dtype()), &ts[i]);
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "42"}, {"note", "a \"quoted\" \xc3\xa9"}};
  std::string p = Path("all.safetensors");
  ASSERT_TRUE(WriteSafetensors(p, in, meta).ok());

  auto r = ReadSafetensors(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->metadata, meta);
  ASSERT_EQ(r->tensors.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(r->tensors[i].first, in[i].first);
    EXPECT_TRUE(SameBytes(r->tensors[i].second, ts[i])) << in[i].first;
    const Tensor* f = r->Find(in[i].first);
    ASSERT_NE(f, nullptr);
    EXPECT_TRUE(SameBytes(*f, ts[i]));
  }
  EXPECT_EQ(r->Find("nope"), nullptr);
  EXPECT_EQ(r->tensors[1].second.data<float>()[0], ts[1].data<float>()[0]);
}

TEST_F(SafetensorsTest, LayoutMatchesTheReferenceImplementation) {
  Tensor a = Tensor::FromVector<float>(DType::kF32, {2}, {1.f, 2.f});
  Tensor b = Tensor::FromVector<int8_t>(DType::kI8, {3}, {-1, 0, 5});
  std::string p = Path("layout.safetensors");
  ASSERT_TRUE(WriteSafetensors(p, {{"a", &a}, {"b", &b}}, {{"k", "v"}}).ok());
  std::string bytes = ReadBytes(p);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[static_cast<size_t>(i)])) << (8 * i);
  EXPECT_EQ((8 + n) % 8, 0u);                  // header padded to 8 bytes
  ASSERT_EQ(bytes.size(), 8 + n + 8 + 3);      // data follows exactly
  std::string header = bytes.substr(8, n);
  std::string trimmed = header.substr(0, header.find_last_not_of(' ') + 1);
  EXPECT_EQ(trimmed,
            "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[8,11]}}");
  float f[2];
  std::memcpy(f, bytes.data() + 8 + n, 8);
  EXPECT_EQ(f[0], 1.f);
  EXPECT_EQ(f[1], 2.f);
  EXPECT_EQ(static_cast<int8_t>(bytes[8 + n + 8]), -1);
  EXPECT_EQ(bytes[8 + n + 10], 5);
}

// The bytes Python's `safetensors.torch.save_file({"weight": ..., "bias": ...},
// metadata={"format": "pt"})` produces: the Rust serializer sorts tensors by
// dtype alignment then name, so the JSON key order differs from the data
// order here (bias is stored after weight); header padded with spaces.
TEST_F(SafetensorsTest, ReadsAFileWrittenPerTheSpec) {
  std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
      "\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[32,40]},"
      "\"weight\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[16,24]},"
      "\"half\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[12,16]},"
      "\"f64\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
      "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[8,12]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string data;
  auto put = [&](const void* p, size_t n) { data.append(static_cast<const char*>(p), n); };
  double d = -2.5;
  put(&d, 8);
  const uint8_t mask[4] = {1, 0, 0, 1};
  put(mask, 4);
  const uint16_t half[2] = {0x3c00, 0xc000};  // 1.0, -2.0
  put(half, 4);
  const uint16_t w[4] = {0x3f80, 0x4000, 0x4040, 0xbf80};  // bf16 1, 2, 3, -1
  put(w, 8);
  const float bias[2] = {0.5f, -0.25f};
  put(bias, 8);
  const int64_t ids[1] = {int64_t{1} << 40};
  put(ids, 8);
  std::string p = Path("python.safetensors");
  WriteBytes(p, Build(header, data));

  auto r = ReadSafetensors(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->metadata.at("format"), "pt");
  ASSERT_EQ(r->tensors.size(), 6u);
  const char* order[] = {"f64", "mask", "half", "weight", "bias", "ids"};  // data order
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(r->tensors[i].first, order[i]);
  const Tensor* wt = r->Find("weight");
  ASSERT_NE(wt, nullptr);
  EXPECT_EQ(wt->dtype(), DType::kBF16);
  EXPECT_EQ(wt->dims(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(wt->GetAsDouble(2), 3.0);
  EXPECT_EQ(wt->GetAsDouble(3), -1.0);
  EXPECT_EQ(r->Find("bias")->GetAsDouble(1), -0.25);
  EXPECT_EQ(r->Find("half")->GetAsDouble(1), -2.0);
  EXPECT_EQ(r->Find("f64")->GetAsDouble(0), -2.5);
  EXPECT_EQ(r->Find("f64")->rank(), 0);
  EXPECT_EQ(r->Find("ids")->GetAsInt64(0), int64_t{1} << 40);
  EXPECT_EQ(r->Find("mask")->GetAsInt64(3), 1);
  EXPECT_EQ(r->Find("mask")->GetAsInt64(1), 0);
}

TEST_F(SafetensorsTest, EmptyFileAndOverwriteAreAtomic) {
  std::string p = Path("ckpt.safetensors");
  ASSERT_TRUE(WriteSafetensors(p, {}).ok());
  auto r = ReadSafetensors(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->tensors.empty());
  EXPECT_TRUE(r->metadata.empty());
  Tensor a = Tensor::FromVector<float>(DType::kF32, {1}, {7.f});
  ASSERT_TRUE(WriteSafetensors(p, {{"a", &a}}).ok());  // replaces the old file
  r = ReadSafetensors(p);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->tensors.size(), 1u);
  EXPECT_EQ(r->tensors[0].second.GetAsDouble(0), 7.0);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(e.path().filename(), "ckpt.safetensors") << "temporary file left behind";
  }
  EXPECT_EQ(files, 1);
}

TEST_F(SafetensorsTest, WriteRejectsBadInput) {
  Tensor a = Tensor::FromVector<float>(DType::kF32, {1}, {1.f});
  Tensor u16 = Tensor::Zeros(DType::kU16, {2}).value();
  Tensor s = Tensor::Strings({1}, {"x"});
  std::string p = Path("w.safetensors");
  struct Case {
    std::vector<std::pair<std::string, const Tensor*>> in;
    std::string needle;
  };
  std::vector<Case> cases = {
      {{{"a", &a}, {"a", &a}}, "duplicate tensor name 'a'"},
      {{{"", &a}}, "empty name"},
      {{{"__metadata__", &a}}, "reserved"},
      {{{"u", &u16}}, "dtype u16"},
      {{{"s", &s}}, "tensor 's'"},
      {{{"n", nullptr}}, "tensor 'n'"},
  };
  for (const Case& c : cases) {
    Status st = WriteSafetensors(p, c.in);
    ASSERT_FALSE(st.ok()) << c.needle;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find(c.needle), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find(p), std::string::npos) << st.ToString();
  }
  EXPECT_FALSE(fs::exists(p));
  Status st = WriteSafetensors(Path("no/such/dir/x.safetensors"), {{"a", &a}});
  EXPECT_EQ(st.code(), StatusCode::kIoError) << st.ToString();
  auto r = ReadSafetensors(Path("missing.safetensors"));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST_F(SafetensorsTest, RejectsMalformedHeaders) {
  const std::string f4 = std::string(8, '\x01');  // 8 data bytes
  auto one = [](const std::string& info) { return "{\"w\":" + info + "}"; };
  ExpectBad("abc", "too short");
  ExpectBad(Build("{}", "", 100), "past the end");
  ExpectBad(Build("{}", "", int64_t{200'000'000}), "limit");
  ExpectBad(Build("{\"w\":", f4), "not valid JSON");
  ExpectBad(Build("[1,2]", ""), "does not start with '{'");
  ExpectBad(Build("{} x", ""), "not valid JSON");
  ExpectBad(Build(one("{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}"), f4), "tensor 'w' has unsupported dtype \"C64\"");
  ExpectBad(Build(one("{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}"), f4), "unsupported dtype");
  ExpectBad(Build(one("{\"dtype\":3,\"shape\":[2],\"data_offsets\":[0,8]}"), f4), "\"dtype\" is not a string");
  ExpectBad(Build(one("{\"shape\":[2],\"data_offsets\":[0,8]}"), f4), "tensor 'w' lacks");
  ExpectBad(Build(one("[1]"), f4), "tensor 'w' is not described");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}"), f4), "non-negative");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}"), f4), "non-negative");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}"), f4), "not an array");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}"), f4),
            "overflows");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}"), f4), "reversed");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}"), f4), "[begin, end]");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-1,7]}"), f4), "[begin, end]");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}"), f4), "truncated");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}"), f4), "needs 12");
  ExpectBad(Build(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"), f4), "cover 4");
  ExpectBad(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  f4),
            "overlap");
  ExpectBad(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", f4), "gap");
  ExpectBad(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                  f4),
            "duplicate entry 'a'");
  ExpectBad(Build("{\"__metadata__\":{\"k\":1}}", ""), "metadata entry 'k'");
  ExpectBad(Build("{\"__metadata__\":[\"k\"]}", ""), "__metadata__");
  ExpectBad(Build("{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", f4), "empty name");
  ExpectBad(Build(one("{\"dtype\":\"BOOL\",\"shape\":[8],\"data_offsets\":[0,8]}"), std::string(7, '\0') + "\x02"),
            "booleans must be 0 or 1");
}

// A valid checkpoint cut short at every length, and with single bytes
// overwritten at every position: each read returns (ok or an error) without
// crashing; truncations are always errors; an accepted file is consistent.
TEST_F(SafetensorsTest, TruncatedOrCorruptedFilesNeverCrash) {
  Tensor a = Patterned(DType::kF32, {2, 3}, 1);
  Tensor b = Patterned(DType::kBF16, {5}, 2);
  Tensor c = Patterned(DType::kBool, {3}, 3);
  Tensor d = Patterned(DType::kI64, {}, 4);
  std::string good = Path("good.safetensors");
  ASSERT_TRUE(WriteSafetensors(good, {{"layer.0.weight", &a}, {"b", &b}, {"mask", &c}, {"step", &d}},
                               {{"format", "tessera"}})
                  .ok());
  const std::string bytes = ReadBytes(good);
  ASSERT_GT(bytes.size(), 100u);
  std::string p = Path("mut.safetensors");
  for (size_t len = 0; len < bytes.size(); ++len) {
    WriteBytes(p, bytes.substr(0, len));
    auto r = ReadSafetensors(p);
    ASSERT_FALSE(r.ok()) << "truncated to " << len << " bytes but accepted";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  }
  const char values[] = {'\0', '\xff', '{', '"', '9', ' ', ',', '\x80', '1'};
  int accepted = 0, rejected = 0;
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    for (char v : values) {
      if (bytes[pos] == v) continue;
      std::string m = bytes;
      m[pos] = v;
      WriteBytes(p, m);
      auto r = ReadSafetensors(p);
      if (!r.ok()) {
        ++rejected;
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
        continue;
      }
      ++accepted;
      size_t total = 0;
      for (const auto& [name, t] : r->tensors) {
        EXPECT_EQ(t.nbytes(), static_cast<size_t>(t.num_elements()) * DTypeSize(t.dtype())) << name;
        total += t.nbytes();
      }
      EXPECT_LE(total, bytes.size());
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(accepted, 0);  // e.g. corrupted tensor data is still a valid file
}

}  // namespace
}  // namespace tessera

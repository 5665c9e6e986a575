// .npy files, scikit-learn's digits and row selection (runtime/datasets.h).
// The digits numbers below come from
//   python3 -c "from sklearn.datasets import load_digits; d = load_digits(); ..."
// (scikit-learn 1.2.1, python3-sklearn).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "runtime/datasets.h"

namespace tessera {
namespace {
namespace fs = std::filesystem;

class DatasetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // tmpfs when there is one: the corruption loops rewrite a file thousands
    // of times, which is slow on a journaling disk.
    std::error_code ec;
    fs::path base = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm")
                                                                                           : fs::temp_directory_path();
    dir_ = base /
           ("tsr_ds_" + std::to_string(::getpid()) + "_" +
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
  // A .npy file of the given version with `dict` as its header text.
  static std::string Npy(int major, const std::string& dict, const std::string& data) {
    std::string out("\x93NUMPY", 6);
    out.push_back(static_cast<char>(major));
    out.push_back(0);
    const size_t n = dict.size();
    const int len_bytes = major == 1 ? 2 : 4;
    for (int i = 0; i < len_bytes; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    return out + dict + data;
  }
  Status LoadBytes(const std::string& bytes, const std::string& name = "bad.npy") {
    std::string p = Path(name);
    WriteBytes(p, bytes);
    auto r = LoadNpy(p);
    if (r.ok()) return Status::Ok();
    EXPECT_NE(r.status().message().find(p), std::string::npos) << "error does not name the file: "
                                                               << r.status().ToString();
    return r.status();
  }

  fs::path dir_;
};

std::string Data(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

// np.save(f, np.arange(6, dtype='<f4').reshape(2, 3)) with numpy 1.24.
std::string NumpyArangeBytes() {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  dict.append(117 - dict.size(), ' ');
  dict.push_back('\n');
  const float v[6] = {0, 1, 2, 3, 4, 5};
  std::string out("\x93NUMPY\x01\x00\x76\x00", 10);
  return out + dict + Data(v, sizeof(v));
}

TEST_F(DatasetsTest, LoadsAndWritesNumpysBytes) {
  std::string p = Path("arange.npy");
  WriteBytes(p, NumpyArangeBytes());
  auto r = LoadNpy(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->dtype(), DType::kF32);
  EXPECT_EQ(r->dims(), (std::vector<int64_t>{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r->data<float>()[i], static_cast<float>(i));
  std::string q = Path("out.npy");
  ASSERT_TRUE(SaveNpy(q, *r).ok());
  EXPECT_EQ(ReadBytes(q), NumpyArangeBytes());  // byte-identical to numpy's file
}

TEST_F(DatasetsTest, NpyRoundTripsEveryDtypeAndShape) {
  const DType dts[] = {DType::kF32, DType::kF64, DType::kI64, DType::kI32, DType::kU8,
                       DType::kI8,  DType::kBool, DType::kF16, DType::kI16, DType::kU16,
                       DType::kU32, DType::kU64};
  const std::vector<std::vector<int64_t>> shapes = {{}, {7}, {2, 3, 4}, {0, 5}, {1, 1, 1, 1, 3}};
  int k = 0;
  for (DType dt : dts) {
    for (const auto& dims : shapes) {
      Tensor t = Tensor::Zeros(dt, dims).value();
      auto* b = static_cast<uint8_t*>(t.mutable_raw());
      for (size_t i = 0; i < t.nbytes(); ++i) b[i] = dt == DType::kBool ? (i + k) % 2 : static_cast<uint8_t>(i * 13 + k);
      std::string p = Path("t" + std::to_string(k++) + ".npy");
      ASSERT_TRUE(SaveNpy(p, t).ok()) << DTypeName(dt);
      EXPECT_EQ(fs::file_size(p) - t.nbytes(), (fs::file_size(p) - t.nbytes()) / 64 * 64) << "data not 64-aligned";
      auto r = LoadNpy(p);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->dtype(), dt);
      EXPECT_EQ(r->dims(), dims);
      ASSERT_EQ(r->nbytes(), t.nbytes());
      if (t.nbytes()) {
        EXPECT_EQ(std::memcmp(r->raw(), t.raw(), t.nbytes()), 0) << DTypeName(dt);
      }
    }
  }
}

TEST_F(DatasetsTest, ReadsVersions2And3AndByteOrderFreeTypes) {
  const int64_t v[2] = {-5, 1ll << 40};
  for (int major : {2, 3}) {
    std::string p = Path("v" + std::to_string(major) + ".npy");
    WriteBytes(p, Npy(major, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }\n", Data(v, 16)));
    auto r = LoadNpy(p);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->dims(), (std::vector<int64_t>{2}));
    EXPECT_EQ(r->data<int64_t>()[1], 1ll << 40);
  }
  // '|' and '>' are both fine for one-byte types; key order is free.
  std::string p = Path("u1.npy");
  WriteBytes(p, Npy(1, "{'shape': (3,), 'fortran_order': False, 'descr': '>u1'}", "\x01\x02\xff"));
  auto r = LoadNpy(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->dtype(), DType::kU8);
  EXPECT_EQ(r->data<uint8_t>()[2], 255);
}

TEST_F(DatasetsTest, NpyErrorsAreClear) {
  auto hdr = [](const std::string& descr, const std::string& fortran, const std::string& shape) {
    return "{'descr': " + descr + ", 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
  };
  const std::string f8(8, '\0');
  struct Case {
    std::string bytes;
    StatusCode code;
    std::string needle;
  };
  std::vector<Case> cases = {
      {"hello world, not npy", StatusCode::kInvalidArgument, "magic"},
      {"\x93NUM", StatusCode::kInvalidArgument, "magic"},
      {Npy(4, hdr("'<f4'", "False", "(2,)"), f8), StatusCode::kUnsupported, "version 4"},
      {Npy(1, hdr("'>f4'", "False", "(2,)"), f8), StatusCode::kUnsupported, "big-endian"},
      {Npy(1, hdr("'<f4'", "True", "(2,)"), f8), StatusCode::kUnsupported, "Fortran"},
      {Npy(1, hdr("'|O'", "False", "(1,)"), f8), StatusCode::kUnsupported, "object"},
      {Npy(1, hdr("[('a', '<f4')]", "False", "(2,)"), f8), StatusCode::kUnsupported, "structured"},
      {Npy(1, hdr("'<c8'", "False", "(1,)"), f8), StatusCode::kUnsupported, "'<c8'"},
      {Npy(1, hdr("'<f4'", "False", "(3,)"), f8), StatusCode::kInvalidArgument, "truncated"},
      {Npy(1, hdr("'<f4'", "False", "(1,)"), f8), StatusCode::kInvalidArgument, "needs 4"},
      {Npy(1, hdr("'<f4'", "False", "(-2,)"), f8), StatusCode::kInvalidArgument, "non-negative"},
      {Npy(1, hdr("'<f4'", "0", "(2,)"), f8), StatusCode::kInvalidArgument, "fortran_order"},
      {Npy(1, hdr("'<f4'", "False", "[2]"), f8), StatusCode::kInvalidArgument, "tuple"},
      {Npy(1, "{'descr': '<f4', 'shape': (2,)}", f8), StatusCode::kInvalidArgument, "lacks"},
      {Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", f8),
       StatusCode::kInvalidArgument, "unexpected header key 'x'"},
      {Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", f8), StatusCode::kInvalidArgument,
       "cannot parse"},
      {Npy(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", f8),
       StatusCode::kInvalidArgument, "duplicate key"},
      {Npy(1, std::string(40, '(') + std::string(40, ')'), ""), StatusCode::kInvalidArgument, "too deep"},
      {Npy(1, hdr("'<f4'", "False", "(99999999999999999999999,)"), f8), StatusCode::kInvalidArgument,
       "too large"},
      {Npy(1, hdr("'<f4'", "False", "(4294967296, 4294967296)"), f8), StatusCode::kInvalidArgument, "overflows"},
      {Npy(1, hdr("'|b1'", "False", "(2,)"), "\x01\x07"), StatusCode::kInvalidArgument, "not 0/1"},
      {std::string("\x93NUMPY\x01\x00\xff\x00{}", 12), StatusCode::kInvalidArgument, "past the end"},
  };
  for (const Case& c : cases) {
    Status st = LoadBytes(c.bytes);
    ASSERT_FALSE(st.ok()) << "accepted; expected " << c.needle;
    EXPECT_EQ(st.code(), c.code) << st.ToString();
    EXPECT_NE(st.message().find(c.needle), std::string::npos) << st.ToString();
  }
  EXPECT_EQ(LoadNpy(Path("missing.npy")).status().code(), StatusCode::kNotFound);
  // Truncating a good file anywhere is an error, never a crash.
  const std::string good = NumpyArangeBytes();
  for (size_t len = 0; len < good.size(); ++len) {
    Status st = LoadBytes(good.substr(0, len), "trunc.npy");
    EXPECT_FALSE(st.ok()) << "truncated to " << len;
  }
}

TEST_F(DatasetsTest, SaveNpyRejectsWhatNumpyCannotHold) {
  Tensor bf = Tensor::Zeros(DType::kBF16, {2}).value();
  Status st = SaveNpy(Path("bf.npy"), bf);
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("bf16"), std::string::npos) << st.ToString();
  EXPECT_EQ(SaveNpy(Path("u.npy"), Tensor()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SaveNpy(Path("s.npy"), Tensor::Strings({1}, {"a"})).code(), StatusCode::kUnsupported);
  Tensor f = Tensor::FromVector<float>(DType::kF32, {1}, {1.f});
  EXPECT_EQ(SaveNpy(Path("no/dir/x.npy"), f).code(), StatusCode::kIoError);
}

// ---- digits ----

class DigitsTest : public DatasetsTest {
 protected:
  void SetUp() override {
    DatasetsTest::SetUp();
    if (const char* e = std::getenv("TESSERA_DIGITS")) saved_env_ = e;
    ::unsetenv("TESSERA_DIGITS");
  }
  void TearDown() override {
    if (saved_env_) ::setenv("TESSERA_DIGITS", saved_env_->c_str(), 1);
    else ::unsetenv("TESSERA_DIGITS");
    DatasetsTest::TearDown();
  }
  // Loads a split, or skips the test when the data set is not installed.
  std::optional<Dataset> Load(const std::string& split, bool image = false) {
    auto r = LoadDigits(split, image);
    if (r.status().code() == StatusCode::kNotFound) return std::nullopt;
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return std::nullopt;
    return std::move(r).value();
  }
  void WriteGz(const std::string& p, const std::string& text) {
    gzFile gz = gzopen(p.c_str(), "wb");
    ASSERT_NE(gz, nullptr);
    ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
    gzclose(gz);
  }
  std::optional<std::string> saved_env_;
};

double PixelSum(const Tensor& f) {
  double s = 0;
  for (int64_t i = 0; i < f.num_elements(); ++i) s += f.data<float>()[i] * 16.0;
  return s;
}
std::vector<int64_t> ClassCounts(const Tensor& labels) {
  std::vector<int64_t> c(10, 0);
  for (int64_t i = 0; i < labels.num_elements(); ++i) c.at(static_cast<size_t>(labels.data<int64_t>()[i]))++;
  return c;
}

TEST_F(DigitsTest, MatchesScikitLearn) {
  auto all = Load("all");
  if (!all) GTEST_SKIP() << "digits.csv.gz not installed (python3-sklearn)";
  EXPECT_EQ(all->size(), 1797);
  EXPECT_EQ(all->features.dtype(), DType::kF32);
  EXPECT_EQ(all->features.dims(), (std::vector<int64_t>{1797, 64}));
  EXPECT_EQ(all->labels.dtype(), DType::kI64);
  EXPECT_DOUBLE_EQ(PixelSum(all->features), 561718.0);
  EXPECT_EQ(all->labels.data<int64_t>()[0], 0);
  EXPECT_EQ(all->labels.data<int64_t>()[1], 1);
  EXPECT_EQ(all->labels.data<int64_t>()[1796], 8);
  EXPECT_EQ(ClassCounts(all->labels), (std::vector<int64_t>{178, 182, 177, 183, 181, 182, 181, 179, 174, 180}));
  const int row5[64] = {0, 0, 12, 10, 0,  0,  0,  0, 0, 0, 14, 16, 16, 14, 0,  0, 0, 0, 13, 16, 15, 10,
                        1, 0, 0,  0,  11, 16, 16, 7, 0, 0, 0,  0,  0,  4,  7,  16, 7, 0, 0,  0,  0,  0,
                        4, 16, 9, 0,  0,  0,  5, 4, 12, 16, 4, 0, 0, 0,  9,  16, 16, 10, 0, 0};
  for (int i = 0; i < 64; ++i) EXPECT_EQ(all->features.data<float>()[5 * 64 + i], row5[i] / 16.0f) << i;
  EXPECT_EQ(all->labels.data<int64_t>()[5], 5);
  float mx = 0;
  for (int64_t i = 0; i < all->features.num_elements(); ++i) mx = std::max(mx, all->features.data<float>()[i]);
  EXPECT_EQ(mx, 1.0f);

  auto train = Load("train");
  auto test = Load("test");
  ASSERT_TRUE(train && test);
  // Stratified interleaved split: the 5th, 10th, ... row of each class is "test".
  EXPECT_EQ(train->size(), 1442);
  EXPECT_EQ(test->size(), 355);
  EXPECT_DOUBLE_EQ(PixelSum(train->features), 450566.0);
  EXPECT_DOUBLE_EQ(PixelSum(test->features), 111152.0);
  EXPECT_EQ(ClassCounts(train->labels), (std::vector<int64_t>{143, 146, 142, 147, 145, 146, 145, 144, 140, 144}));
  EXPECT_EQ(ClassCounts(test->labels), (std::vector<int64_t>{35, 36, 35, 36, 36, 36, 36, 35, 34, 36}));
  EXPECT_EQ(train->labels.data<int64_t>()[7], 7);
  EXPECT_EQ(train->labels.data<int64_t>()[1441], 8);
  EXPECT_EQ(test->labels.data<int64_t>()[0], 5);  // sample 33, the 5th 5
  EXPECT_EQ(test->labels.data<int64_t>()[354], 9);

  auto img = Load("test", /*image=*/true);
  ASSERT_TRUE(img);
  EXPECT_EQ(img->features.dims(), (std::vector<int64_t>{355, 1, 8, 8}));
  ASSERT_EQ(img->features.nbytes(), test->features.nbytes());
  EXPECT_EQ(std::memcmp(img->features.raw(), test->features.raw(), test->features.nbytes()), 0);
}

TEST_F(DigitsTest, BadSplitAndBadFilesAreErrors) {
  auto r = LoadDigits("validation");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("validation"), std::string::npos);

  ::setenv("TESSERA_DIGITS", Path("nope.csv.gz").c_str(), 1);
  r = LoadDigits("all");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("TESSERA_DIGITS"), std::string::npos) << r.status().ToString();

  std::string row(64 * 2, '0');
  for (size_t i = 1; i < row.size(); i += 2) row[i] = ',';
  row += "3\n";  // 64 zeros and label 3
  std::string good;
  for (int i = 0; i < 1797; ++i) good += row;
  std::string p = Path("digits.csv.gz");
  WriteGz(p, good);
  ::setenv("TESSERA_DIGITS", p.c_str(), 1);
  r = LoadDigits("train");
  ASSERT_TRUE(r.ok()) << r.status().ToString();  // a well-formed substitute file loads
  EXPECT_EQ(r->size(), 1438);  // one class: every 5th row is test (359)
  EXPECT_EQ(r->labels.data<int64_t>()[7], 3);

  struct Case {
    std::string text;
    std::string needle;
  };
  std::string bad_pixel = row;
  bad_pixel[0] = '9';
  bad_pixel.insert(0, "1");  // 19
  std::vector<Case> cases = {
      {good.substr(0, row.size() * 100), "has 100 rows"},
      {good + row, "more than 1797"},
      {row.substr(0, row.size() - 3) + "\n" + good, "line 1: 64 fields"},
      {"0," + row + good, "more than 65"},
      {bad_pixel + good, "pixel value 19"},
      {row.substr(0, row.size() - 2) + "10\n" + good, "label 10"},
      {row.substr(0, row.size() - 2) + "x\n" + good, "expected a non-negative integer"},
      {row.substr(0, row.size() - 2) + "-1\n" + good, "expected a non-negative integer"},
  };
  for (const Case& c : cases) {
    WriteGz(p, c.text);
    r = LoadDigits("all");
    ASSERT_FALSE(r.ok()) << c.needle;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().ToString();
  }
  // A corrupt gzip stream.
  WriteGz(p, good);
  std::string bytes = ReadBytes(p);
  bytes.resize(bytes.size() / 2);
  WriteBytes(p, bytes);
  r = LoadDigits("all");
  EXPECT_FALSE(r.ok());
}

// ---- TakeRows / GatherRows ----

Tensor Rows(int64_t n, int64_t w) {
  std::vector<int32_t> v(static_cast<size_t>(n * w));
  std::iota(v.begin(), v.end(), 0);
  return Tensor::FromVector<int32_t>(DType::kI32, {n, w}, v);
}
std::vector<int32_t> Values(const Tensor& t) { return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + t.num_elements()); }

TEST(RowsTest, TakeRowsWraps) {
  Tensor t = Rows(5, 2);  // row r = {2r, 2r+1}
  auto r = TakeRows(t, 1, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dims(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(Values(*r), (std::vector<int32_t>{2, 3, 4, 5}));
  r = TakeRows(t, 4, 3);  // rows 4, 0, 1
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Values(*r), (std::vector<int32_t>{8, 9, 0, 1, 2, 3}));
  r = TakeRows(t, 12, 2);  // begin past the end wraps too: rows 2, 3
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Values(*r), (std::vector<int32_t>{4, 5, 6, 7}));
  r = TakeRows(t, 3, 11);  // more rows than the tensor has
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->dims()[0], 11);
  for (int64_t i = 0; i < 11; ++i) EXPECT_EQ(r->data<int32_t>()[2 * i], 2 * ((3 + i) % 5)) << i;
  r = TakeRows(t, 2, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dims(), (std::vector<int64_t>{0, 2}));

  Tensor labels = Tensor::FromVector<int64_t>(DType::kI64, {3}, {7, 8, 9});
  r = TakeRows(labels, 2, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->GetAsInt64(0), 9);
  EXPECT_EQ(r->GetAsInt64(1), 7);
}

TEST(RowsTest, GatherRowsFollowsTheIndex) {
  Tensor t = Rows(4, 3);
  auto r = GatherRows(t, {3, 0, 0, 2});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dims(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(Values(*r), (std::vector<int32_t>{9, 10, 11, 0, 1, 2, 0, 1, 2, 6, 7, 8}));
  r = GatherRows(t, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dims(), (std::vector<int64_t>{0, 3}));
}

TEST(RowsTest, BadArgumentsAreErrors) {
  Tensor t = Rows(4, 3);
  EXPECT_EQ(TakeRows(t, -1, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TakeRows(t, 0, -2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TakeRows(Tensor::ScalarF32(1.f), 0, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TakeRows(Tensor(), 0, 1).status().code(), StatusCode::kInvalidArgument);
  Tensor empty = Tensor::Zeros(DType::kF32, {0, 3}).value();
  auto r = TakeRows(empty, 0, 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("0 rows"), std::string::npos) << r.status().ToString();
  EXPECT_TRUE(TakeRows(empty, 0, 0).ok());
  r = GatherRows(t, {1, 4});
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("index[1] = 4"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(GatherRows(t, {-1}).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(GatherRows(Tensor::Strings({1}, {"a"}), {0}).status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace tessera

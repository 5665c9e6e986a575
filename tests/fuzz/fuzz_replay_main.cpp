// A plain main() for the fuzz target: runs LLVMFuzzerTestOneInput over each
// file named on the command line (or every file of each named folder). Lets
// CTest replay crash regressions and the seed corpus with any compiler,
// without libFuzzer. Exits 0 when every input ran (a crash fails the test).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int RunFile(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "fuzz_replay: cannot read %s\n", p.string().c_str());
    return 1;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::fprintf(stderr, "fuzz_replay: %s (%zu bytes)\n", p.string().c_str(), bytes.size());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int failures = 0, ran = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (!e.is_regular_file() || e.path().filename() == "README.md") continue;
        failures += RunFile(e.path());
        ++ran;
      }
    } else {
      failures += RunFile(p);
      ++ran;
    }
  }
  std::fprintf(stderr, "fuzz_replay: ran %d inputs, %d unreadable\n", ran, failures);
  return failures == 0 ? 0 : 1;
}

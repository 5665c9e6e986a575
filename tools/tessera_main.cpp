// The `tessera` command-line tool: run, compile, bench, inspect and train
// models and list devices, through the public C API (train: the C++
// training API, see cli_train.cpp).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli.h"

namespace {

const char kUsage[] =
    "usage: tessera <command> [options]\n"
    "\n"
    "commands:\n"
    "  run MODEL       run a model (.onnx or .tplan) once; --check DIR compares outputs\n"
    "  compile MODEL   compile a model to a plan: -o OUT.tplan\n"
    "  bench MODEL     time a model: compile time, latency percentiles, throughput, memory\n"
    "  inspect MODEL   show ops, inputs/outputs, placement, segments and the memory plan\n"
    "  devices         list backends and devices (and why a backend is unusable)\n"
    "  train MODEL     train a model on .npy data or digits: --config train.toml, --epochs N\n"
    "\n"
    "  tessera <command> --help   options of a command\n"
    "  tessera --version          the library version\n"
    "\n"
    "exit status: 0 ok, 1 failure (mismatch, runtime error), 2 bad usage or invalid input\n";

int Dispatch(int argc, char** argv) {
  using namespace tessera::cli;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return Fail(kExitUsage, "no command given");
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("tessera %s\n", tsr_version());
    return kExitOk;
  }
  if (cmd == "run") return CmdRun(argc, argv);
  if (cmd == "compile") return CmdCompile(argc, argv);
  if (cmd == "bench") return CmdBench(argc, argv);
  if (cmd == "devices") return CmdDevices(argc, argv);
  if (cmd == "inspect") return CmdInspect(argc, argv);
  if (cmd == "train") return CmdTrain(argc, argv);
  if (!cmd.empty() && cmd[0] == '-') return Fail(kExitUsage, "unknown option '" + cmd + "' (see 'tessera --help')");
  return Fail(kExitUsage, "unknown command '" + cmd + "' (see 'tessera --help')");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Dispatch(argc, argv);
  } catch (const std::exception& e) {  // e.g. std::bad_alloc or a JSON type error: report, never crash
    return tessera::cli::Fail(tessera::cli::kExitFailure, std::string("internal error: ") + e.what());
  }
}

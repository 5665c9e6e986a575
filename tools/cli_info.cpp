// `tessera devices` and `tessera inspect`.
#include <cstdio>
#include <map>

#include "cli.h"

namespace tessera::cli {

namespace {

const char kDevicesUsage[] =
    "usage: tessera devices [--json]\n"
    "\n"
    "Lists every backend plugin found, its devices and their properties, and for\n"
    "a backend that is present but unusable, why.\n"
    "\n"
    "options:\n"
    "  --json   print the runtime's JSON as is\n";

const char kInspectUsage[] =
    "usage: tessera inspect MODEL|PLAN [options]\n"
    "\n"
    "Compiles MODEL (or loads PLAN) and prints its ops (counts by type), inputs and\n"
    "outputs, the placement of every node, the segments and the memory plan.\n"
    "\n"
    "options:\n"
    "  --json             print the runtime's description (tsr_session_describe_json) as is\n"
    "  --device LIST      devices in priority order, e.g. cpu or cuda:0,cpu\n"
    "  --config FILE      deployment config file\n"
    "  --dim NAME=N       bind a symbolic dim (repeatable)\n"
    "  --opt-level N      0, 1 or 2 (default 2)\n"
    "  --precision P      f32 (default) or bf16\n"
    "  --dump-after PASS  print the graph after PASS to stderr\n"
    "  --placement NAME=ROLE  run the node NAME (or every node of op type NAME) on\n"
    "                     device ROLE (repeatable)\n";

std::string Scalar(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

bool IsBytesKey(const std::string& key) {
  return key.size() >= 5 && key.compare(key.size() - 5, 5, "bytes") == 0;
}

std::string ValueText(const std::string& key, const json& v) {
  if (v.is_number() && IsBytesKey(key)) return v.dump() + " (" + FormatBytes(v.get<double>()) + ")";
  return Scalar(v);
}

bool IsFlat(const json& v) {
  if (!v.is_array()) return false;
  for (const json& e : v)
    if (e.is_structured()) return false;
  return true;
}

// Prints any JSON as an indented outline: objects as "key: value", arrays of
// objects as "- " items, flat arrays on one line.
void PrintTree(const json& v, int indent) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (auto& [k, e] : v.items()) {
      if (e.is_object() && !e.empty()) {
        std::printf("%s%s:\n", pad.c_str(), k.c_str());
        PrintTree(e, indent + 2);
      } else if (e.is_array() && !IsFlat(e)) {
        std::printf("%s%s:\n", pad.c_str(), k.c_str());
        PrintTree(e, indent + 2);
      } else {
        std::printf("%s%s: %s\n", pad.c_str(), k.c_str(), ValueText(k, e).c_str());
      }
    }
  } else if (v.is_array()) {
    for (const json& e : v) {
      if (e.is_structured()) {
        std::printf("%s-\n", pad.c_str());
        PrintTree(e, indent + 2);
      } else {
        std::printf("%s- %s\n", pad.c_str(), Scalar(e).c_str());
      }
    }
  } else {
    std::printf("%s%s\n", pad.c_str(), Scalar(v).c_str());
  }
}

// The first of `keys` present in object `o`, or null.
const json* Field(const json& o, std::initializer_list<const char*> keys) {
  if (!o.is_object()) return nullptr;
  for (const char* k : keys) {
    auto it = o.find(k);
    if (it != o.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

std::string Str(const json& o, std::initializer_list<const char*> keys, const std::string& fallback = "") {
  const json* f = Field(o, keys);
  return f ? Scalar(*f) : fallback;
}

void PrintBackend(const json& b) {
  std::string name = Str(b, {"name", "backend"}, "(unnamed)");
  std::string version = Str(b, {"version"});
  std::string path = Str(b, {"path"});
  std::printf("%s%s%s\n", name.c_str(), version.empty() ? "" : (" " + version).c_str(),
              path.empty() ? "" : ("  (" + path + ")").c_str());
  const json* why = Field(b, {"unusable_reason", "reason", "error", "why"});
  const json* usable = Field(b, {"usable", "available"});
  if (why && !(why->is_string() && why->get<std::string>().empty())) {
    std::printf("  unusable: %s\n", Scalar(*why).c_str());
  } else if (usable && usable->is_boolean() && !usable->get<bool>()) {
    std::printf("  unusable (no reason given)\n");
  }
  const json* devices = Field(b, {"devices"});
  if (devices && devices->is_array()) {
    if (devices->empty()) std::printf("  no devices\n");
    for (const json& d : *devices) {
      std::string role = Str(d, {"role", "id", "index"}, "(device)");
      std::string dname = Str(d, {"name"});
      std::printf("  device %s%s\n", role.c_str(), dname.empty() ? "" : (": " + dname).c_str());
      if (d.is_object()) {
        json rest = d;
        for (const char* k : {"role", "id", "index", "name"}) rest.erase(k);
        PrintTree(rest, 4);
      }
    }
  }
  if (b.is_object()) {  // anything else the runtime reports
    json rest = b;
    for (const char* k : {"name", "backend", "version", "path", "unusable_reason", "reason", "error", "why", "usable",
                          "available", "devices", "device_count"})
      rest.erase(k);
    if (!rest.empty()) PrintTree(rest, 2);
  }
}

}  // namespace

int CmdDevices(int argc, char** argv) {
  Args args;
  if (int rc = ParseArgs("devices", argc, argv, 2, {{"--json", false}, {"--device"}}, &args)) return rc;
  if (args.help) {
    std::fputs(kDevicesUsage, stdout);
    return kExitOk;
  }
  if (!args.positional.empty())
    return Fail(kExitUsage, "devices: unexpected argument '" + args.positional[0] + "'");
  char* raw = nullptr;
  int32_t code = 0;
  std::string msg;
  tsr_status_t* s = tsr_devices_json(nullptr, &raw);
  StringPtr owned(raw);
  if (IsError(s, &code, &msg)) return Fail(kExitFailure, "cannot list devices: " + msg);
  if (!raw) return Fail(kExitFailure, "cannot list devices: the runtime returned nothing");
  json j = json::parse(raw, nullptr, false);
  if (j.is_discarded()) return Fail(kExitFailure, "the runtime's device list is not valid JSON");
  if (args.Has("--json")) {
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  const json* backends = j.is_array() ? &j : Field(j, {"backends"});
  if (!backends || !backends->is_array()) {
    PrintTree(j, 0);
    return kExitOk;
  }
  if (backends->empty()) std::printf("no backends found\n");
  for (const json& b : *backends) PrintBackend(b);
  if (j.is_object()) {
    json rest = j;
    rest.erase("backends");
    if (!rest.empty()) PrintTree(rest, 0);
  }
  return kExitOk;
}

// hetero (tools/cli_run.cpp): --trace / --placement onto options.
int ApplyHeteroFlags(const Args& args, tsr_options_t* options);

int CmdInspect(int argc, char** argv) {
  std::vector<FlagSpec> specs = {{"--json", false}, {"--device"},    {"--config"},     {"--dim", true, true},
                                 {"--opt-level"},   {"--precision"}, {"--dump-after"}, {"--threads"},
                                 {"--strict", false}, {"--placement", true, true}};
  Args args;
  if (int rc = ParseArgs("inspect", argc, argv, 2, specs, &args)) return rc;
  if (args.help) {
    std::fputs(kInspectUsage, stdout);
    return kExitOk;
  }
  if (args.positional.size() != 1)
    return Fail(kExitUsage, std::string("inspect: expected one MODEL or PLAN, got ") +
                                std::to_string(args.positional.size()) + " (see 'tessera inspect --help')");
  const std::string model = args.positional[0];
  int rc;
  if ((rc = CheckModelPath(model))) return rc;
  OptionsPtr options;
  if ((rc = BuildOptions(args, &options, nullptr))) return rc;
  if ((rc = ApplyHeteroFlags(args, options.get()))) return rc;  // hetero
  SessionPtr session;
  double compile_ms = 0;
  if ((rc = CreateSession(model, options.get(), &session, &compile_ms))) return rc;
  json d;
  std::string raw;
  if ((rc = DescribeJson(session.get(), &d, &raw))) return rc;
  if (args.Has("--json")) {
    std::printf("%s\n", raw.c_str());
    return kExitOk;
  }
  std::vector<IoInfo> in_info, out_info;
  if ((rc = GetIoInfo(session.get(), &in_info, &out_info))) return rc;

  std::printf("model: %s\n", model.c_str());
  std::printf("inputs:\n");
  for (const IoInfo& io : in_info)
    std::printf("  %s: %s %s\n", io.name.c_str(), DtypeName(io.dtype), ShapeString(io).c_str());
  std::printf("outputs:\n");
  for (const IoInfo& io : out_info)
    std::printf("  %s: %s %s\n", io.name.c_str(), DtypeName(io.dtype), ShapeString(io).c_str());

  if (const json* note = Field(d, {"note"})) std::printf("note: %s\n", Scalar(*note).c_str());

  // Ops by type: the runtime's counts, else counted from the node list.
  const json* nodes = Field(d, {"nodes"});
  std::map<std::string, int64_t> ops;
  if (const json* oc = Field(d, {"op_counts"}); oc && oc->is_object()) {
    for (auto& [op, n] : oc->items())
      if (n.is_number_integer()) ops[op] = n.get<int64_t>();
  } else if (nodes && nodes->is_array()) {
    for (const json& n : *nodes) ops[Str(n, {"op", "op_type", "type"}, "?")]++;
  }
  if (!ops.empty()) {
    int64_t total = 0;
    for (auto& [op, n] : ops) total += n;
    std::printf("ops (%lld nodes", static_cast<long long>(total));
    if (const json* imp = Field(d, {"imported_nodes"}); imp && imp->is_number_integer())
      std::printf(", %lld imported", static_cast<long long>(imp->get<int64_t>()));
    std::printf("):\n");
    for (auto& [op, count] : ops) std::printf("  %-36s %lld\n", op.c_str(), static_cast<long long>(count));
  }
  if (nodes && nodes->is_array()) {
    std::printf("placement (node -> device):\n");
    size_t i = 0;
    for (const json& n : *nodes) {
      std::string name = Str(n, {"name"}, "#" + std::to_string(i));
      // hetero: the partitioner's reason when it is more than "preferred device".
      std::string reason = Str(n, {"reason"}, "");
      std::printf("  %-40s %-28s -> %s%s\n", name.c_str(), Str(n, {"op", "op_type", "type"}, "?").c_str(),
                  Str(n, {"device"}, "(unplaced)").c_str(),
                  reason.empty() || reason == "preferred device" ? "" : ("  (" + reason + ")").c_str());
      ++i;
    }
  }
  std::printf("placement summary: %s\n", PlacementString(PlacementCounts(d)).c_str());
  const json* segments = Field(d, {"segments"});
  if (segments && segments->is_array()) {
    std::printf("segments (%zu):\n", segments->size());
    size_t i = 0;
    for (const json& s : *segments) {
      const json* sn = Field(s, {"nodes"});
      std::string count = !sn ? "?" : (sn->is_array() ? std::to_string(sn->size()) : Scalar(*sn));
      std::printf("  #%zu %s: %s nodes\n", i++, Str(s, {"device"}, "?").c_str(), count.c_str());
      if (s.is_object()) {
        json rest = s;
        rest.erase("device");
        rest.erase("nodes");
        if (!rest.empty()) PrintTree(rest, 6);
      }
    }
  }
  if (const json* tr = Field(d, {"transfers"}); tr && tr->is_array() && !tr->empty()) {
    std::printf("transfers (%zu, %s per run):\n", tr->size(),
                ValueText("bytes", d.value("transfer_bytes_per_run", json(0))).c_str());
    for (const json& t : *tr)
      std::printf("  %s: %s -> %s, %s\n", Str(t, {"value"}, "?").c_str(), Str(t, {"from"}, "?").c_str(),
                  Str(t, {"to"}, "?").c_str(), ValueText("bytes", t.value("bytes", json(0))).c_str());
  }
  // Memory plan: arena bytes per device and the lower bound (the peak of live bytes).
  const json* devices = Field(d, {"devices"});
  const json* memory = Field(d, {"memory_plan", "memory"});
  if ((devices && devices->is_array()) || memory) {
    std::printf("memory plan:\n");
    if (devices && devices->is_array()) {
      for (const json& dv : *devices) {
        const json* arena = Field(dv, {"arena_bytes"});
        const json* lb = Field(dv, {"arena_lower_bound", "arena_lower_bound_bytes", "lower_bound"});
        std::printf("  %-12s arena %s, lower bound %s%s\n", Str(dv, {"role", "name"}, "?").c_str(),
                    arena && arena->is_number() ? FormatBytes(arena->get<double>()).c_str() : "?",
                    lb && lb->is_number() ? FormatBytes(lb->get<double>()).c_str() : "?",
                    Field(dv, {"name"}) ? ("  (" + Str(dv, {"name"}) + ")").c_str() : "");
      }
    }
    if (memory) PrintTree(*memory, 2);
  }
  if (const json* passes = Field(d, {"passes"}); passes && passes->is_array() && !passes->empty()) {
    std::printf("passes:\n");
    for (const json& p : *passes)
      std::printf("  %-32s %s -> %s nodes, %s changes, %s ms\n", Str(p, {"pass", "name"}, "?").c_str(),
                  Str(p, {"nodes_before"}, "?").c_str(), Str(p, {"nodes_after"}, "?").c_str(),
                  Str(p, {"changes"}, "?").c_str(), Str(p, {"ms"}, "?").c_str());
  }
  if (json rest = d; rest.is_object()) {
    for (const char* k : {"nodes", "segments", "memory_plan", "memory", "inputs", "outputs", "op_counts", "placement",
                          "devices", "transfers", "passes", "note", "imported_nodes", "transfer_bytes_per_run"})
      rest.erase(k);
    if (!rest.empty()) PrintTree(rest, 0);
  }
  return kExitOk;
}

}  // namespace tessera::cli

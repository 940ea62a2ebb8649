// The fleetctl verbs: submit, load, start, stop, unload, destroy, list-units, list-unit-files,
// list-machines, cat, status, journal, plus fjord's scale and explain. They talk to the server's
// native API (/v1) through api::NativeClient; status and journal reach the agent running the
// unit through the server's 307.
//
// fleetctl's rules: a name without a unit suffix gets ".service"; a FILE is parsed locally
// first (diagnostics as file:line: and exit 1 on errors); web@1.service is submitted from
// web@.service when no file of its own exists; load/start/stop/unload wait for the state unless
// --no-block (--block-attempts N bounds the wait; 0 waits forever). Exit 1 on any error, with
// one line on stderr: "fjord VERB: what failed: why".
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "api/native_client.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "unit/unit.h"

namespace fjord::cli {
namespace {

using base::Result;
using base::Status;

constexpr int kFailed = 1;
constexpr std::string_view kDefaultEndpoint = "http://127.0.0.1:7777";

struct Global {
  std::string endpoint;
  std::string output;   // "" | "json"
  std::string machine;  // status/journal: which machine of a global unit
};

void AddGlobal(CLI::App* cmd, Global& g, bool json) {
  cmd->add_option("--endpoint", g.endpoint,
                  "Server URL (default $FJORD_ENDPOINT, else http://127.0.0.1:7777)");
  if (json) {
    cmd->add_option("--output,-o", g.output, "Output format: json")
        ->check(CLI::IsMember({"json", "table"}));
  }
}

std::string Endpoint(const Global& g) {
  if (!g.endpoint.empty()) return g.endpoint;
  const char* env = std::getenv("FJORD_ENDPOINT");
  return env != nullptr && env[0] != '\0' ? std::string(env) : std::string(kDefaultEndpoint);
}

Result<std::unique_ptr<api::NativeClient>> Connect(const Global& g) {
  std::string endpoint = Endpoint(g);
  auto client = api::NativeClient::Create(endpoint);
  if (!client.ok())
    return client.status().Wrap("endpoint " + endpoint + " (--endpoint or FJORD_ENDPOINT)");
  return client;
}

int Fail(std::string_view verb, const Status& st) {
  std::cerr << "fjord " << verb << ": " << st.message() << "\n";
  return kFailed;
}

// ---------------------------------------------------------------------------------------------
// Names and files

constexpr std::string_view kUnitSuffixes[] = {".service",   ".socket", ".device", ".mount",
                                              ".automount", ".swap",   ".target", ".path",
                                              ".timer",     ".slice",  ".scope"};

bool HasUnitSuffix(std::string_view name) {
  for (std::string_view s : kUnitSuffixes) {
    if (base::EndsWith(name, s) && name.size() > s.size()) return true;
  }
  return false;
}

// fleetctl's unitNameMangle: the file's base name, ".service" when it has no unit suffix.
std::string MangleName(std::string_view arg) {
  std::string name = std::filesystem::path(std::string(arg)).filename().string();
  if (!HasUnitSuffix(name)) name += ".service";
  return name;
}

Result<unit::UnitName> ParseName(std::string_view arg) {
  std::string name = MangleName(arg);
  auto parsed = unit::UnitName::Parse(name);
  if (!parsed.ok()) return parsed.status().Wrap("unit name " + base::QuoteForDisplay(name));
  return parsed;
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::ErrnoStatus("read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The local file for `arg`: the path itself, or for an instance the template beside it.
std::optional<std::filesystem::path> LocalFile(std::string_view arg, const unit::UnitName& name) {
  std::error_code ec;
  std::filesystem::path path{std::string(arg)};
  if (std::filesystem::is_regular_file(path, ec)) return path;
  if (name.is_instance()) {
    std::filesystem::path tmpl = path.parent_path() / name.Template().str();
    if (std::filesystem::is_regular_file(tmpl, ec)) return tmpl;
  }
  return std::nullopt;
}

// Parses a unit file as `name` (an instance may come from its template's file). Diagnostics go
// to stderr as file:line:; errors make the result an error.
Result<std::vector<api::UnitOption>> ParseLocal(const std::filesystem::path& path,
                                                const unit::UnitName& name) {
  FJORD_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  unit::ParseResult parsed = unit::ParseUnit(text, path.string(), name);
  for (const auto& d : parsed.diagnostics) std::cerr << d.ToString() << "\n";
  if (!parsed.unit) {
    return base::InvalidArgument(path.string() + ": invalid unit file (fix the errors above; " +
                                 "`fjord unit check` explains them)");
  }
  std::vector<api::UnitOption> options;
  for (const auto& o : parsed.unit->options()) {
    options.push_back({std::string(o.section), std::string(o.name), std::string(o.value)});
  }
  return options;
}

std::string OptionsText(const std::vector<api::UnitOption>& options) {
  std::vector<unit::UnitOption> views;
  for (const auto& o : options) views.push_back({o.section, o.name, o.value});
  return unit::Serialize(views);
}

// fleetctl's lazyCreateUnits: units the server has are used as they are (a warning when the
// local file differs); others are created with `desired` (absent: inactive) from their files,
// an instance from its template's file or from the template the server has.
// Returns the names; `created` lists the ones made now.
Result<std::vector<std::string>> EnsureUnits(api::NativeClient& client,
                                             const std::vector<std::string>& args,
                                             std::optional<api::UnitStateName> desired,
                                             std::set<std::string>* created, bool allow_templates) {
  std::vector<std::string> names;
  for (const std::string& arg : args) {
    FJORD_ASSIGN_OR_RETURN(unit::UnitName name, ParseName(arg));
    if (name.is_template() && !allow_templates) {
      return base::InvalidArgument("unit " + name.str() +
                                   " is a template: name an instance such as " +
                                   std::string(name.prefix()) + "@1." + std::string(name.type()) +
                                   ", or use `fjord scale " + name.str() + " N`");
    }
    std::optional<std::filesystem::path> file = LocalFile(arg, name);
    auto existing = client.GetUnit(name.str());
    if (existing.ok()) {
      if (file) {
        auto local = ParseLocal(*file, name);
        if (local.ok() && OptionsText(*local) != OptionsText(existing->options)) {
          std::cerr << "WARNING: unit " << name.str() << " on the server differs from "
                    << file->string() << " (destroy it first to replace it)\n";
        }
      }
      names.push_back(name.str());
      continue;
    }
    if (existing.status().code() != base::Code::kNotFound) return existing.status();
    if (!file && name.is_instance()) {
      // As fleetctl: an instance of a template the server already has takes its options.
      auto tmpl = client.GetUnit(name.Template().str());
      if (tmpl.ok()) {
        api::PutUnitRequest req;
        req.desired_state = desired;
        req.options = tmpl->options;
        FJORD_RETURN_IF_ERROR(client.PutUnit(name.str(), req).status());
        if (created) created->insert(name.str());
        names.push_back(name.str());
        continue;
      }
      if (tmpl.status().code() != base::Code::kNotFound) return tmpl.status();
    }
    if (!file) {
      return base::NotFound(
          "unit " + name.str() + " does not exist on the server and " + base::QuoteForDisplay(arg) +
          " is not a unit file" +
          (name.is_instance() ? " (nor is " + name.Template().str() + ", locally or on the server)"
                              : ""));
    }
    FJORD_ASSIGN_OR_RETURN(auto options, ParseLocal(*file, name));
    api::PutUnitRequest req;
    req.desired_state = desired;
    req.options = std::move(options);
    FJORD_RETURN_IF_ERROR(client.PutUnit(name.str(), req).status());
    if (created) created->insert(name.str());
    names.push_back(name.str());
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Waiting for states

struct BlockFlags {
  bool no_block = false;
  int attempts = 0;  // 0: no limit
};

void AddBlockFlags(CLI::App* cmd, BlockFlags& b) {
  cmd->add_flag("--no-block", b.no_block, "Do not wait until the units reach the state");
  cmd->add_option("--block-attempts", b.attempts,
                  "Polls (every 100 ms) before giving up; 0 waits forever");
}

bool Reached(const api::UnitView& v, api::UnitStateName target) {
  using api::UnitStateName;
  if (v.current_state == target) return true;
  if (target == UnitStateName::kInactive) {
    return !v.current_state && v.machine_id.empty() && v.states.empty();
  }
  if (v.current_state || v.states.empty()) return false;
  for (const auto& s : v.states) {
    if (!v.hash.empty() && !s.state.hash.empty() && s.state.hash != v.hash) return false;
    const std::string& active = s.state.systemd_active_state;
    bool running = !active.empty() && active != "inactive";
    if (target == UnitStateName::kLaunched ? !running : running) return false;
  }
  return true;
}

Status WaitForStates(api::NativeClient& client, const std::vector<std::string>& names,
                     api::UnitStateName target, const BlockFlags& block) {
  std::map<std::string, std::string> ips;
  if (auto machines = client.ListMachines(); machines.ok()) {
    for (const auto& m : *machines) ips[m.machine.id] = m.machine.primary_ip;
  }
  std::vector<std::string> pending = names;
  std::map<std::string, std::string> reasons;
  for (int attempt = 0; block.attempts == 0 || attempt < block.attempts; attempt++) {
    std::vector<std::string> still;
    for (const std::string& name : pending) {
      FJORD_ASSIGN_OR_RETURN(api::UnitView v, client.GetUnit(name));
      if (v.global) {
        std::cout << "Triggered global unit " << name << " " << api::ToString(target) << "\n";
      } else if (Reached(v, target)) {
        std::cout << "Unit " << name << " " << api::ToString(target);
        std::string machine = v.machine_id;
        if (machine.empty() && !v.states.empty()) machine = v.states.front().state.machine_id;
        if (target != api::UnitStateName::kInactive && !machine.empty()) {
          std::cout << " on " << MachineLegend(machine, ips[machine], false);
        }
        std::cout << "\n";
      } else {
        if (!v.reason.empty()) reasons[name] = v.reason;
        still.push_back(name);
      }
    }
    pending = std::move(still);
    if (pending.empty()) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string message;
  for (const std::string& name : pending) {
    if (!message.empty()) message += "; ";
    message += "unit " + name + " did not reach " + std::string(api::ToString(target)) + " after " +
               std::to_string(block.attempts) + " attempts";
    if (auto it = reasons.find(name); it != reasons.end()) message += ": " + it->second;
  }
  return base::Status(base::Code::kDeadlineExceeded, message);
}

// load/start/stop/unload: ensure (load/start only), set the state, wait.
int SetStateMain(std::string_view verb, const Global& g, const BlockFlags& block,
                 const std::vector<std::string>& args, api::UnitStateName target, bool create) {
  auto client = Connect(g);
  if (!client.ok()) return Fail(verb, client.status());
  api::NativeClient& c = **client;
  std::vector<std::string> names;
  std::set<std::string> created;
  if (create) {
    auto ensured = EnsureUnits(c, args, target, &created, false);
    if (!ensured.ok()) return Fail(verb, ensured.status());
    names = std::move(*ensured);
  } else {
    for (const std::string& arg : args) {
      auto name = ParseName(arg);
      if (!name.ok()) return Fail(verb, name.status());
      names.push_back(name->str());
    }
  }
  for (const std::string& name : names) {
    if (created.count(name)) continue;
    api::PutUnitRequest req;
    req.desired_state = target;
    if (auto st = c.PutUnit(name, req); !st.ok()) return Fail(verb, st.status());
  }
  if (block.no_block) return 0;
  Status st = WaitForStates(c, names, target, block);
  return st.ok() ? 0 : Fail(verb, st);
}

// ---------------------------------------------------------------------------------------------
// Listings

struct ListFlags {
  Global g;
  bool full = false;
  bool no_legend = false;
  std::vector<std::string> fields;
};

std::map<std::string, std::string> MachineIps(api::NativeClient& c) {
  std::map<std::string, std::string> ips;
  if (auto machines = c.ListMachines(); machines.ok()) {
    for (const auto& m : *machines) ips[m.machine.id] = m.machine.primary_ip;
  }
  return ips;
}

std::string ShortHash(const std::string& hash, bool full) {
  return full || hash.size() <= 7 ? hash : hash.substr(0, 7);
}

constexpr std::string_view kUnitFields[] = {"unit", "machine", "active", "sub",      "load",
                                            "hash", "dstate",  "state",  "tmachine", "reason"};

int ListUnitsMain(const ListFlags& f) {
  auto client = Connect(f.g);
  if (!client.ok()) return Fail("list-units", client.status());
  auto all = (*client)->ListUnits();
  if (!all.ok()) return Fail("list-units", all.status());
  // As fleetctl: units that run or should run somewhere. Submitted-only units and templates
  // (never scheduled) are in list-unit-files.
  std::vector<api::UnitView> shown;
  for (auto& u : *all) {
    bool is_template = u.name.find("@.") != std::string::npos;
    if (u.states.empty() && (is_template || u.desired_state == api::UnitStateName::kInactive)) {
      continue;
    }
    shown.push_back(std::move(u));
  }
  const std::vector<api::UnitView>* units = &shown;
  if (f.g.output == "json") {
    std::vector<std::string> items;
    for (const auto& u : *units) items.push_back(api::ToJson(u));
    std::cout << JsonArray(items) << "\n";
    return 0;
  }
  std::vector<std::string> fields = f.fields;
  bool any_reason = false;
  for (const auto& u : *units) any_reason |= u.states.empty() && !u.reason.empty();
  if (fields.empty()) {
    fields = {"unit", "machine", "active", "sub"};
    if (any_reason) fields.push_back("reason");
  }
  for (std::string& field : fields) {
    field = base::AsciiLower(field);
    bool known = false;
    for (std::string_view k : kUnitFields) known |= field == k;
    if (!known) {
      std::string list;
      for (std::string_view k : kUnitFields) list += (list.empty() ? "" : ",") + std::string(k);
      return Fail("list-units",
                  base::InvalidArgument("--fields: unknown field " + base::QuoteForDisplay(field) +
                                        "; use " + list));
    }
  }
  std::map<std::string, std::string> ips = MachineIps(**client);
  std::vector<std::string> header;
  for (const std::string& field : fields) {
    std::string h = field;
    for (char& ch : h) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    header.push_back(std::move(h));
  }
  Table table(header);
  auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  for (const auto& u : *units) {
    std::vector<api::UnitStatusReport> states = u.states;
    if (states.empty()) states.push_back({});  // one row for a unit no machine reports
    for (const auto& s : states) {
      std::vector<std::string> row;
      std::string machine = s.state.machine_id.empty() ? u.machine_id : s.state.machine_id;
      for (const std::string& field : fields) {
        if (field == "unit") row.push_back(u.name);
        if (field == "machine") {
          row.push_back(machine.empty() ? "-" : MachineLegend(machine, ips[machine], f.full));
        }
        if (field == "active") row.push_back(dash(s.state.systemd_active_state));
        if (field == "sub") row.push_back(dash(s.state.systemd_sub_state));
        if (field == "load") row.push_back(dash(s.state.systemd_load_state));
        if (field == "hash") row.push_back(dash(ShortHash(u.hash, f.full)));
        if (field == "dstate") row.push_back(std::string(api::ToString(u.desired_state)));
        if (field == "state") {
          row.push_back(u.current_state ? std::string(api::ToString(*u.current_state)) : "-");
        }
        if (field == "tmachine") {
          row.push_back(
              u.machine_id.empty() ? "-" : MachineLegend(u.machine_id, ips[u.machine_id], f.full));
        }
        if (field == "reason") row.push_back(dash(u.reason));
      }
      table.AddRow(std::move(row));
    }
  }
  std::cout << table.Render(!f.no_legend);
  return 0;
}

int ListUnitFilesMain(const ListFlags& f) {
  auto client = Connect(f.g);
  if (!client.ok()) return Fail("list-unit-files", client.status());
  auto units = (*client)->ListUnits();
  if (!units.ok()) return Fail("list-unit-files", units.status());
  if (f.g.output == "json") {
    std::vector<std::string> items;
    for (const auto& u : *units) items.push_back(api::ToJson(u));
    std::cout << JsonArray(items) << "\n";
    return 0;
  }
  std::map<std::string, std::string> ips = MachineIps(**client);
  Table table({"UNIT", "HASH", "DSTATE", "STATE", "TARGET"});
  for (const auto& u : *units) {
    std::string target = u.global ? "global"
                         : u.machine_id.empty()
                             ? "-"
                             : MachineLegend(u.machine_id, ips[u.machine_id], f.full);
    table.AddRow({u.name, ShortHash(u.hash, f.full), std::string(api::ToString(u.desired_state)),
                  u.current_state ? std::string(api::ToString(*u.current_state)) : "-", target});
  }
  std::cout << table.Render(!f.no_legend);
  return 0;
}

int ListMachinesMain(const ListFlags& f) {
  auto client = Connect(f.g);
  if (!client.ok()) return Fail("list-machines", client.status());
  auto machines = (*client)->ListMachines();
  if (!machines.ok()) return Fail("list-machines", machines.status());
  if (f.g.output == "json") {
    std::vector<std::string> items;
    for (const auto& m : *machines) items.push_back(api::ToJson(m));
    std::cout << JsonArray(items) << "\n";
    return 0;
  }
  Table table({"MACHINE", "IP", "METADATA"});
  for (const auto& m : *machines) {
    std::string metadata;
    for (const auto& [k, v] : m.machine.metadata) {
      metadata += (metadata.empty() ? "" : ",") + k + "=" + v;
    }
    std::string id =
        f.full || m.machine.id.size() <= 8 ? m.machine.id : m.machine.id.substr(0, 8) + "...";
    table.AddRow({id, m.machine.primary_ip.empty() ? "-" : m.machine.primary_ip,
                  metadata.empty() ? "-" : metadata});
  }
  std::cout << table.Render(!f.no_legend);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// One-unit verbs

int SubmitMain(const Global& g, const std::vector<std::string>& args) {
  auto client = Connect(g);
  if (!client.ok()) return Fail("submit", client.status());
  std::set<std::string> created;
  auto names = EnsureUnits(**client, args, std::nullopt, &created, true);
  if (!names.ok()) return Fail("submit", names.status());
  for (const std::string& name : *names) {
    if (created.count(name)) std::cout << "Unit " << name << " inactive\n";
  }
  return 0;
}

int DestroyMain(const Global& g, const std::vector<std::string>& args) {
  auto client = Connect(g);
  if (!client.ok()) return Fail("destroy", client.status());
  int rc = 0;
  for (const std::string& arg : args) {
    auto name = ParseName(arg);
    Status st = name.ok() ? (*client)->DestroyUnit(name->str()) : name.status();
    if (!st.ok()) {
      rc = Fail("destroy", st);
      continue;
    }
    std::cout << "Destroyed " << name->str() << "\n";
  }
  return rc;
}

int CatMain(const Global& g, const std::string& arg) {
  auto client = Connect(g);
  if (!client.ok()) return Fail("cat", client.status());
  auto name = ParseName(arg);
  if (!name.ok()) return Fail("cat", name.status());
  auto unit = (*client)->GetUnit(name->str());
  if (!unit.ok()) return Fail("cat", unit.status());
  std::cout << OptionsText(unit->options);
  return 0;
}

int StatusMain(const Global& g, const std::vector<std::string>& args) {
  auto client = Connect(g);
  if (!client.ok()) return Fail("status", client.status());
  int rc = 0;
  std::vector<std::string> json_items;
  for (size_t i = 0; i < args.size(); i++) {
    auto name = ParseName(args[i]);
    if (!name.ok()) {
      rc = Fail("status", name.status());
      continue;
    }
    auto text = (*client)->UnitStatus(name->str(), g.output == "json", g.machine);
    if (!text.ok()) {
      rc = Fail("status", text.status());
      continue;
    }
    if (g.output == "json") {
      json_items.push_back(*text);
      continue;
    }
    if (i > 0) std::cout << "\n";
    std::cout << *text;
    if (!text->empty() && text->back() != '\n') std::cout << "\n";
  }
  if (g.output == "json") std::cout << JsonArray(json_items) << "\n";
  return rc;
}

int JournalMain(const Global& g, const std::string& arg, int64_t lines, bool follow) {
  auto client = Connect(g);
  if (!client.ok()) return Fail("journal", client.status());
  auto name = ParseName(arg);
  if (!name.ok()) return Fail("journal", name.status());
  if (lines < 0) return Fail("journal", base::InvalidArgument("--lines must be >= 0"));
  ::signal(SIGPIPE, SIG_IGN);
  Status st = (*client)->Journal(
      name->str(), lines, follow,
      [](std::string_view data) {
        std::fwrite(data.data(), 1, data.size(), stdout);
        return std::fflush(stdout) == 0 && !std::ferror(stdout);
      },
      g.machine);
  return st.ok() ? 0 : Fail("journal", st);
}

int ScaleMain(const Global& g, const std::string& arg, int64_t instances) {
  auto client = Connect(g);
  if (!client.ok()) return Fail("scale", client.status());
  auto name = ParseName(arg);
  if (!name.ok()) return Fail("scale", name.status());
  if (!name->is_template()) {
    return Fail("scale", base::InvalidArgument(name->str() + " is not a template: scale a "
                                                             "template such as web@.service"));
  }
  if (instances < 0) return Fail("scale", base::InvalidArgument("instances must be >= 0"));
  api::ScaleRequest req;
  req.instances = instances;
  auto reply = (*client)->Scale(name->str(), req);
  if (!reply.ok()) return Fail("scale", reply.status());
  if (g.output == "json") {
    std::cout << api::ToJson(*reply) << "\n";
    return 0;
  }
  for (const auto& n : reply->added) std::cout << "Added " << n << "\n";
  for (const auto& n : reply->removed) std::cout << "Removed " << n << "\n";
  for (const auto& n : reply->pending) std::cout << "Pending " << n << "\n";
  return 0;
}

int ExplainMain(const Global& g, const std::string& arg) {
  auto client = Connect(g);
  if (!client.ok()) return Fail("explain", client.status());
  auto name = ParseName(arg);
  if (!name.ok()) return Fail("explain", name.status());
  auto text = (*client)->Explain(name->str());
  if (!text.ok()) return Fail("explain", text.status());
  std::cout << *text;
  if (!text->empty() && text->back() != '\n') std::cout << "\n";
  return 0;
}

// ---------------------------------------------------------------------------------------------
// stop: units and containers share the verb

struct StopFlags {
  Global g;
  BlockFlags block;
  std::string root;
  double seconds = 10;
  std::vector<std::string> args;
};

int StopMain(const StopFlags& f) {
  std::vector<std::string> units;
  int rc = 0;
  for (const std::string& arg : f.args) {
    if (!HasUnitSuffix(arg) && arg.find('/') == std::string::npos &&
        LocalContainerExists(f.root, arg)) {
      if (int r = StopContainer(f.root, arg, f.seconds); r != 0) rc = r;
      continue;
    }
    units.push_back(arg);
  }
  if (units.empty()) return rc;
  int r = SetStateMain("stop", f.g, f.block, units, api::UnitStateName::kLoaded, false);
  return r != 0 ? r : rc;
}

CLI::App* Verb(CLI::App& app, const std::string& name, const std::string& description) {
  auto* cmd = app.add_subcommand(name, description);
  cmd->group("Cluster (fleet)");
  return cmd;
}

}  // namespace

void RegisterFleetCommands(CLI::App& app, int& exit_code) {
  // submit / load / start / unload
  struct StateVerb {
    const char* name;
    const char* description;
    std::optional<api::UnitStateName> target;
  };
  for (const StateVerb& v : {
           StateVerb{"submit", "Upload unit files to the cluster without scheduling them",
                     std::nullopt},
           StateVerb{"load", "Schedule units on machines without starting them (FILE or UNIT)",
                     api::UnitStateName::kLoaded},
           StateVerb{"start", "Schedule and start units (FILE or UNIT)",
                     api::UnitStateName::kLaunched},
           StateVerb{"unload", "Unschedule units (they stay submitted)",
                     api::UnitStateName::kInactive},
       }) {
    auto* cmd = Verb(app, v.name, v.description);
    auto g = std::make_shared<Global>();
    auto block = std::make_shared<BlockFlags>();
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("units", *args, "Unit files or unit names")->required();
    AddGlobal(cmd, *g, false);
    if (v.target) AddBlockFlags(cmd, *block);
    std::string verb = v.name;
    auto target = v.target;
    cmd->callback([=, &exit_code] {
      if (!target) {
        exit_code = SubmitMain(*g, *args);
      } else {
        exit_code = SetStateMain(verb, *g, *block, *args, *target,
                                 *target != api::UnitStateName::kInactive);
      }
    });
  }

  auto stop_flags = std::make_shared<StopFlags>();
  auto* stop = app.add_subcommand("stop", "Stop cluster units, or a local container");
  stop->footer(
      "Which one: an argument with a unit suffix (.service .socket .timer .path .mount .target\n"
      "...) is a cluster unit (its desired state becomes loaded). Otherwise, if a local container\n"
      "has that name or id, it is stopped: its stop signal, then SIGKILL after --time seconds.\n"
      "Otherwise it is the cluster unit NAME.service (fleetctl's rule).");
  stop->add_option("names", stop_flags->args, "Units or containers")->required();
  stop->add_option("--root", stop_flags->root, "Container state directory");
  stop->add_option("--time,-t", stop_flags->seconds,
                   "Containers: seconds to wait before SIGKILL (default 10)");
  AddGlobal(stop, stop_flags->g, false);
  AddBlockFlags(stop, stop_flags->block);
  stop->callback([stop_flags, &exit_code] { exit_code = StopMain(*stop_flags); });

  auto destroy_g = std::make_shared<Global>();
  auto destroy_args = std::make_shared<std::vector<std::string>>();
  auto* destroy = Verb(app, "destroy", "Stop units and remove them from the cluster");
  destroy->add_option("units", *destroy_args, "Unit names")->required();
  AddGlobal(destroy, *destroy_g, false);
  destroy->callback([destroy_g, destroy_args, &exit_code] {
    exit_code = DestroyMain(*destroy_g, *destroy_args);
  });

  auto lu = std::make_shared<ListFlags>();
  auto* list_units =
      Verb(app, "list-units", "List units and where they run (UNIT MACHINE ACTIVE SUB)");
  AddGlobal(list_units, lu->g, true);
  list_units->add_flag("--full,-l", lu->full, "Do not shorten machine ids");
  list_units->add_flag("--no-legend", lu->no_legend, "No header line");
  list_units
      ->add_option("--fields", lu->fields,
                   "Columns: unit,machine,active,sub,load,hash,dstate,state,tmachine,reason")
      ->delimiter(',');
  list_units->callback([lu, &exit_code] { exit_code = ListUnitsMain(*lu); });

  auto luf = std::make_shared<ListFlags>();
  auto* list_files =
      Verb(app, "list-unit-files", "List submitted units (UNIT HASH DSTATE STATE TARGET)");
  AddGlobal(list_files, luf->g, true);
  list_files->add_flag("--full,-l", luf->full, "Full hashes and machine ids");
  list_files->add_flag("--no-legend", luf->no_legend, "No header line");
  list_files->callback([luf, &exit_code] { exit_code = ListUnitFilesMain(*luf); });

  auto lm = std::make_shared<ListFlags>();
  auto* list_machines = Verb(app, "list-machines", "List machines (MACHINE IP METADATA)");
  AddGlobal(list_machines, lm->g, true);
  list_machines->add_flag("--full,-l", lm->full, "Do not shorten machine ids");
  list_machines->add_flag("--no-legend", lm->no_legend, "No header line");
  list_machines->callback([lm, &exit_code] { exit_code = ListMachinesMain(*lm); });

  auto one_g = std::make_shared<Global>();
  auto one_name = std::make_shared<std::string>();
  auto* cat = Verb(app, "cat", "Print a submitted unit's file");
  cat->add_option("unit", *one_name, "Unit name")->required();
  AddGlobal(cat, *one_g, false);
  cat->callback([one_g, one_name, &exit_code] { exit_code = CatMain(*one_g, *one_name); });

  auto status_g = std::make_shared<Global>();
  auto status_args = std::make_shared<std::vector<std::string>>();
  auto* status = Verb(app, "status", "Show units' status from the machines running them");
  status->add_option("units", *status_args, "Unit names")->required();
  AddGlobal(status, *status_g, true);
  status->add_option("--machine", status_g->machine, "Machine ID, for a global unit");
  status->callback(
      [status_g, status_args, &exit_code] { exit_code = StatusMain(*status_g, *status_args); });

  auto journal_g = std::make_shared<Global>();
  auto journal_name = std::make_shared<std::string>();
  auto journal_lines = std::make_shared<int64_t>(10);
  auto journal_follow = std::make_shared<bool>(false);
  auto* journal = Verb(app, "journal", "Print a unit's output from the machine running it");
  journal->add_option("unit", *journal_name, "Unit name")->required();
  journal->add_option("--lines,-n", *journal_lines, "Lines to show (default 10)");
  journal->add_flag("--follow,-f", *journal_follow, "Keep printing new lines");
  AddGlobal(journal, *journal_g, false);
  journal->add_option("--machine", journal_g->machine, "Machine ID, for a global unit");
  journal->callback([=, &exit_code] {
    exit_code = JournalMain(*journal_g, *journal_name, *journal_lines, *journal_follow);
  });

  auto scale_g = std::make_shared<Global>();
  auto scale_name = std::make_shared<std::string>();
  auto scale_n = std::make_shared<int64_t>(0);
  auto* scale = Verb(app, "scale", "Run N instances of a submitted template (web@.service)");
  scale->add_option("template", *scale_name, "Template unit name")->required();
  scale->add_option("instances", *scale_n, "Number of instances")->required();
  AddGlobal(scale, *scale_g, true);
  scale->callback([=, &exit_code] { exit_code = ScaleMain(*scale_g, *scale_name, *scale_n); });

  auto explain_g = std::make_shared<Global>();
  auto explain_name = std::make_shared<std::string>();
  auto* explain = Verb(app, "explain", "Explain where a unit was placed, or why it was not");
  explain->add_option("unit", *explain_name, "Unit name")->required();
  AddGlobal(explain, *explain_g, false);
  explain->callback([=, &exit_code] { exit_code = ExplainMain(*explain_g, *explain_name); });
}

}  // namespace fjord::cli

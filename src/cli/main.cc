// fjord: one binary, many verbs. See docs/ARCHITECTURE.md.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string_view>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/version.h"

namespace {

constexpr int kUsageExitCode = 2;

// The verb groups and the top-level verbs each one registers. A command builds only the group
// that owns its verb: building every verb's CLI11 parser costs more CPU than the whole rest of
// `fjord version`, and is on the path of every `fjord run`. A verb missing from this table still
// works, through the slow path that builds every group.
struct VerbGroup {
  void (*add)(CLI::App&, int&);
  const char* verbs;  // space-separated
};
constexpr VerbGroup kVerbGroups[] = {
    {fjord::cli::RegisterUnitCommands, "unit"},
    {fjord::cli::RegisterRunCommands, "run ps inspect logs rm"},
    {fjord::cli::RegisterImageCommands, "image"},
    {fjord::cli::RegisterFleetCommands,
     "submit load start unload stop destroy list-units list-unit-files list-machines cat status "
     "journal scale explain"},
    {fjord::cli::RegisterAgentCommands, "agent"},
    {fjord::cli::RegisterServerCommands, "server dev"},
};

bool GroupHasVerb(const VerbGroup& group, std::string_view verb) {
  std::string_view rest = group.verbs;
  while (!rest.empty()) {
    size_t end = std::min(rest.find(' '), rest.size());
    if (rest.substr(0, end) == verb) return true;
    rest.remove_prefix(std::min(end + 1, rest.size()));
  }
  return false;
}

// Registers the group that owns `verb`, or every group when none does (or `verb` is empty:
// help, --version, a bad command line) or the table is out of date.
void RegisterVerbs(CLI::App& app, int& exit_code, std::string_view verb) {
  const VerbGroup* owner = nullptr;
  for (const VerbGroup& group : kVerbGroups) {
    if (!verb.empty() && GroupHasVerb(group, verb)) owner = &group;
  }
  if (owner != nullptr) {
    owner->add(app, exit_code);
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (sub->check_name(std::string(verb))) return;
    }
  }
  for (const VerbGroup& group : kVerbGroups) {
    if (&group != owner) group.add(app, exit_code);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fjord: one pool of machines, one init system for the cluster", "fjord"};
  app.require_subcommand(1);
  app.fallthrough(false);
  app.set_version_flag("--version", std::string(fjord::cli::kVersion));

  int exit_code = 0;

  auto* version = app.add_subcommand("version", "Print fjord's version");
  version->callback([] { std::cout << "fjord " << fjord::cli::kVersion << "\n"; });

  auto* help = app.add_subcommand("help", "Show help for fjord or for one command");
  std::vector<std::string> help_topic;
  help->add_option("command", help_topic, "Command to describe");
  help->callback([&] {
    CLI::App* target = &app;
    for (const auto& word : help_topic) {
      CLI::App* sub = nullptr;
      try {
        sub = target->get_subcommand(word);
      } catch (const CLI::OptionNotFound&) {
      }
      if (sub == nullptr) {
        std::cerr << "fjord help: unknown command `" << word << "`\n";
        exit_code = kUsageExitCode;
        return;
      }
      target = sub;
    }
    // App::help() on the root would describe the selected `help` subcommand itself.
    std::cout << target->get_formatter()->make_help(target, target->get_name(),
                                                    CLI::AppFormatMode::Normal);
  });

  // `version` needs no group; `help` describes them all.
  std::string_view verb = argc > 1 ? argv[1] : "";
  if (verb != "version") RegisterVerbs(app, exit_code, verb == "help" ? "" : verb);

  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known |= sub->check_name(argv[1]);
    if (!known) {
      std::cerr << "fjord: unknown command `" << argv[1] << "`\n";
      std::cerr << "Run `fjord help` for the list of commands.\n";
      return kUsageExitCode;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One clear line, then a hint; CLI11's own exit code mapping is not ours.
    std::cerr << "fjord: " << e.what() << "\n";
    std::cerr << "Run `fjord help` for usage.\n";
    return kUsageExitCode;
  }
  return exit_code;
}

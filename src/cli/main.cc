// fjord: one binary, many verbs. See docs/ARCHITECTURE.md.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/version.h"

namespace {

constexpr int kUsageExitCode = 2;

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

  fjord::cli::RegisterUnitCommands(app, exit_code);
  fjord::cli::RegisterRunCommands(app, exit_code);
  fjord::cli::RegisterImageCommands(app, exit_code);
  fjord::cli::RegisterFleetCommands(app, exit_code);
  fjord::cli::RegisterAgentCommands(app, exit_code);
  fjord::cli::RegisterServerCommands(app, exit_code);

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

// Verb groups of the `fjord` binary. One file per group registers its subcommands on the
// root app; main.cc only wires them together. Commands talk to src/api (client library) or
// to a module's public header, never to server internals.
//
// A command reports its process exit code through `exit_code`; 0 on success.
#pragma once

#include <CLI/CLI.hpp>

namespace fjord::cli {

void RegisterUnitCommands(CLI::App& app, int& exit_code);   // unit_cmd.cc: fjord unit check
void RegisterRunCommands(CLI::App& app, int& exit_code);    // run_cmd.cc: run, ps, inspect, stop, logs, rm
void RegisterImageCommands(CLI::App& app, int& exit_code);  // image_cmd.cc: image import/ls/rm
void RegisterServerCommands(CLI::App& app, int& exit_code);  // server_cmd.cc: fjord server

}  // namespace fjord::cli

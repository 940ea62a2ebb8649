// Verb groups of the `fjord` binary. One file per group registers its subcommands on the
// root app; main.cc only wires them together. Commands talk to src/api (client library) or
// to a module's public header, never to server internals.
//
// A command reports its process exit code through `exit_code`; 0 on success.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace fjord::cli {

void RegisterUnitCommands(CLI::App& app, int& exit_code);   // unit_cmd.cc: fjord unit check
void RegisterRunCommands(CLI::App& app, int& exit_code);    // run_cmd.cc: run, ps, inspect, stop, logs, rm
void RegisterImageCommands(CLI::App& app, int& exit_code);  // image_cmd.cc: image import/ls/rm
// fleet_cmd.cc: submit, load, start, stop, unload, destroy, list-units, list-unit-files,
// list-machines, cat, status, journal, scale, explain.
void RegisterFleetCommands(CLI::App& app, int& exit_code);
void RegisterAgentCommands(CLI::App& app, int& exit_code);  // agent_cmd.cc: fjord agent

// The container half of `fjord stop` (run_cmd.cc), which fleet_cmd.cc's `stop` dispatches to:
// true when a local container has this name or id under `root` (--root, $FJORD_ROOT, default).
bool LocalContainerExists(const std::string& root, const std::string& name);
// Stop signal, then SIGKILL after `seconds`; prints errors; returns the exit code.
int StopContainer(const std::string& root, const std::string& name, double seconds);
void RegisterServerCommands(CLI::App& app, int& exit_code);  // server_cmd.cc: fjord server

}  // namespace fjord::cli

#include "cli/commands.h"

namespace fjord::cli {

void RegisterRunCommands(CLI::App& /*app*/, int& /*exit_code*/) {}

}  // namespace fjord::cli

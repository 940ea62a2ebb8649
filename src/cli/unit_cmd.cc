#include "cli/commands.h"

namespace fjord::cli {

void RegisterUnitCommands(CLI::App& /*app*/, int& /*exit_code*/) {}

}  // namespace fjord::cli

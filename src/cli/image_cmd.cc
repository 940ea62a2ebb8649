#include "cli/commands.h"

namespace fjord::cli {

void RegisterImageCommands(CLI::App& /*app*/, int& /*exit_code*/) {}

}  // namespace fjord::cli

// Port publication and return-path rules, kept in iptables chains that fjord owns per bridge.
// Private to the net module.
//
// Rules (bridge B, subnet S); every rule carries a comment tag "fjord:B:..." so cleanup touches
// nothing fjord did not add:
//   nat    PREROUTING, OUTPUT  -m addrtype --dst-type LOCAL -j FJORD-DNAT-B
//   nat    FJORD-DNAT-B        one DNAT per published port: --dport HOST -> ADDRESS:PORT,
//                              tagged "fjord:B:c:<container_id>"
//   nat    POSTROUTING         -j FJORD-SNAT-B
//   nat    FJORD-SNAT-B        MASQUERADE 127.0.0.0/8 -> B (loopback clients; needs
//                              route_localnet on B), MASQUERADE S -> B for DNATed hairpin traffic,
//                              and with outbound masquerading S -> elsewhere
//   filter FORWARD             -j FJORD-FWD-B: accept to B when established or DNATed; from B
//                              accept all with outbound, else only back into B (drop the rest)
// The chains are rewritten whole through iptables-restore --noflush: one process per change,
// applied atomically by the kernel, no window where a half-written chain is live.
//
// Thread-safety: the functions are pure except RunCommand/SaveTable/Restore, which run
// processes and are safe to call from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/ipam.h"

namespace fjord::net {

struct RuleParams {
  std::string bridge;
  Subnet subnet;
  bool outbound = false;  // masquerade the subnet to other networks
};

std::string DnatChain(std::string_view bridge);
std::string SnatChain(std::string_view bridge);
std::string ForwardChain(std::string_view bridge);

// nat section that rewrites FJORD-DNAT-<bridge> from the leases' ports.
std::string DnatScript(std::string_view bridge, const std::vector<Lease>& leases);
// Full script: rewrites all of the bridge's chains and inserts the jumps that `saved_nat` and
// `saved_filter` (iptables-save output) lack.
std::string SyncScript(const RuleParams& params, const std::vector<Lease>& leases,
                       std::string_view saved_nat, std::string_view saved_filter);
// True if every jump, chain and fixed rule of the bridge is present as configured (the DNAT
// chain's contents are not checked), so Open can skip rewriting them.
bool RulesInPlace(const RuleParams& params, std::string_view saved_nat,
                  std::string_view saved_filter);
// Script that deletes the bridge's jumps found in the saved tables, then its chains. Empty when
// there is nothing to remove.
std::string RemoveScript(std::string_view bridge, std::string_view saved_nat,
                         std::string_view saved_filter);

struct CommandResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};
// Runs argv[0] (looked up in PATH) with `input` on stdin and collects its output.
base::Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                       std::string_view input = {});

// The nat and filter tables from one iptables-save run (empty if a table does not exist).
struct SavedTables {
  std::string nat;
  std::string filter;
};
base::Result<SavedTables> SaveTables();
// iptables-save -t <table>.
base::Result<std::string> SaveTable(std::string_view table);
// iptables-restore --noflush; the error quotes iptables' own message.
base::Status Restore(const std::string& script);

}  // namespace fjord::net

#include "net/iptables.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <set>

#include "base/fd.h"
#include "base/strings.h"

extern char** environ;

namespace fjord::net {
namespace {

using base::ErrnoStatus;
using base::Result;
using base::Status;
using base::UniqueFd;

std::string Tag(std::string_view bridge, std::string_view what) {
  return "fjord:" + std::string(bridge) + ":" + std::string(what);
}

std::string Comment(std::string_view bridge, std::string_view what) {
  return "-m comment --comment \"" + Tag(bridge, what) + "\"";
}

// True if `line` carries comment tag `tag` (iptables-save may or may not quote it).
bool HasTag(std::string_view line, const std::string& tag) {
  return line.find("--comment \"" + tag + "\"") != std::string_view::npos ||
         line.find("--comment " + tag + " ") != std::string_view::npos;
}

bool HasRule(std::string_view saved, std::string_view chain, const std::string& tag) {
  std::string prefix = "-A " + std::string(chain) + " ";
  for (const auto& line : base::Split(saved, '\n')) {
    if (base::StartsWith(line, prefix) && HasTag(line, tag)) return true;
  }
  return false;
}

bool HasChain(std::string_view saved, std::string_view chain) {
  std::string prefix = ":" + std::string(chain) + " ";
  for (const auto& line : base::Split(saved, '\n')) {
    if (base::StartsWith(line, prefix)) return true;
  }
  return false;
}

struct Jump {
  const char* table;
  const char* chain;
  const char* tag;
  std::string rule;  // without "-I CHAIN"
};

std::vector<Jump> Jumps(std::string_view bridge) {
  std::string dnat = DnatChain(bridge);
  std::string local = "-m addrtype --dst-type LOCAL ";
  return {
      {"nat", "PREROUTING", "prerouting", local + Comment(bridge, "prerouting") + " -j " + dnat},
      {"nat", "OUTPUT", "output", local + Comment(bridge, "output") + " -j " + dnat},
      {"nat", "POSTROUTING", "postrouting",
       Comment(bridge, "postrouting") + " -j " + SnatChain(bridge)},
      {"filter", "FORWARD", "forward", Comment(bridge, "forward") + " -j " + ForwardChain(bridge)},
  };
}

// The fixed contents of FJORD-SNAT-<bridge> (nat) and FJORD-FWD-<bridge> (filter).
struct Rule {
  bool nat;
  std::string chain;
  std::string tag;
  std::string spec;  // without "-A CHAIN"
};

std::vector<Rule> StaticRules(const RuleParams& params) {
  const std::string& br = params.bridge;
  std::string subnet = params.subnet.ToString();
  std::string snat = SnatChain(br), fwd = ForwardChain(br);
  std::vector<Rule> rules;
  auto add = [&](bool nat, const std::string& chain, const char* what, const std::string& match,
                 const char* target) {
    rules.push_back({nat, chain, Tag(br, what),
                     match + " " + Comment(br, what) + " -j " + std::string(target)});
  };
  add(true, snat, "localhost", "-s 127.0.0.0/8 -o " + br, "MASQUERADE");
  add(true, snat, "hairpin", "-s " + subnet + " -o " + br + " -m conntrack --ctstate DNAT",
      "MASQUERADE");
  if (params.outbound) {
    add(true, snat, "outbound", "-s " + subnet + " ! -o " + br, "MASQUERADE");
    add(false, fwd, "from-bridge", "-i " + br, "ACCEPT");
  } else {
    // Forwarding is on for the bridge (hairpin to published ports), so without outbound
    // masquerading, unmasqueraded container packets must not leave through other interfaces.
    add(false, fwd, "within-bridge", "-i " + br + " -o " + br, "ACCEPT");
    add(false, fwd, "no-outbound", "-i " + br, "DROP");
  }
  add(false, fwd, "to-bridge", "-o " + br + " -m conntrack --ctstate RELATED,ESTABLISHED,DNAT",
      "ACCEPT");
  return rules;
}

void DnatRules(std::string_view bridge, const std::vector<Lease>& leases, std::string& out) {
  std::string chain = DnatChain(bridge);
  out += ":" + chain + " - [0:0]\n";
  for (const auto& lease : leases) {
    for (const auto& p : lease.ports) {
      out += "-A " + chain + " -p " + p.protocol + " -m " + p.protocol + " --dport " +
             std::to_string(p.host_port) + " " + Comment(bridge, "c:" + lease.container_id) +
             " -j DNAT --to-destination " + FormatIpv4(lease.address) + ":" +
             std::to_string(p.container_port) + "\n";
    }
  }
}

// A failed spawn of iptables-save/-restore almost always means the package is missing.
Status MissingTool(const Status& spawn) {
  return Status(spawn.code(),
                std::string(spawn.message()) + "; install the iptables package (Debian: iptables)");
}

}  // namespace

std::string DnatChain(std::string_view bridge) { return "FJORD-DNAT-" + std::string(bridge); }
std::string SnatChain(std::string_view bridge) { return "FJORD-SNAT-" + std::string(bridge); }
std::string ForwardChain(std::string_view bridge) { return "FJORD-FWD-" + std::string(bridge); }

std::string DnatScript(std::string_view bridge, const std::vector<Lease>& leases) {
  std::string out = "*nat\n";
  DnatRules(bridge, leases, out);
  out += "COMMIT\n";
  return out;
}

std::string SyncScript(const RuleParams& params, const std::vector<Lease>& leases,
                       std::string_view saved_nat, std::string_view saved_filter) {
  const std::string& br = params.bridge;
  std::string nat = "*nat\n";
  DnatRules(br, leases, nat);
  nat += ":" + SnatChain(br) + " - [0:0]\n";
  std::string filter = "*filter\n:" + ForwardChain(br) + " - [0:0]\n";
  for (const auto& rule : StaticRules(params)) {
    (rule.nat ? nat : filter) += "-A " + rule.chain + " " + rule.spec + "\n";
  }
  for (const auto& jump : Jumps(br)) {
    bool is_nat = std::string_view(jump.table) == "nat";
    std::string_view saved = is_nat ? saved_nat : saved_filter;
    if (HasRule(saved, jump.chain, Tag(br, jump.tag))) continue;
    (is_nat ? nat : filter) += std::string("-I ") + jump.chain + " " + jump.rule + "\n";
  }
  return nat + "COMMIT\n" + filter + "COMMIT\n";
}

bool RulesInPlace(const RuleParams& params, std::string_view saved_nat,
                  std::string_view saved_filter) {
  const std::string& br = params.bridge;
  if (!HasChain(saved_nat, DnatChain(br))) return false;
  for (const auto& jump : Jumps(br)) {
    bool is_nat = std::string_view(jump.table) == "nat";
    if (!HasRule(is_nat ? saved_nat : saved_filter, jump.chain, Tag(br, jump.tag))) return false;
  }
  // The fixed chains must hold exactly the expected tagged rules (a changed `outbound` setting
  // or a hand-added rule means a rewrite).
  std::set<std::string> want_nat, want_filter, have_nat, have_filter;
  for (const auto& rule : StaticRules(params)) (rule.nat ? want_nat : want_filter).insert(rule.tag);
  auto collect = [](std::string_view saved, const std::string& chain, std::set<std::string>& out) {
    std::string prefix = "-A " + chain + " ";
    for (const auto& line : base::Split(saved, '\n')) {
      if (!base::StartsWith(line, prefix)) continue;
      auto at = line.find("--comment ");
      if (at == std::string::npos) {
        out.insert("");  // untagged: not ours
        continue;
      }
      auto tag = std::string_view(line).substr(at + 10);
      if (!tag.empty() && tag[0] == '"') tag = tag.substr(1);
      out.insert(std::string(tag.substr(0, tag.find_first_of("\" "))));
    }
  };
  collect(saved_nat, SnatChain(br), have_nat);
  collect(saved_filter, ForwardChain(br), have_filter);
  return want_nat == have_nat && want_filter == have_filter;
}

std::string RemoveScript(std::string_view bridge, std::string_view saved_nat,
                         std::string_view saved_filter) {
  std::string nat, filter;
  // Delete exactly the tagged jumps as iptables-save printed them, however many copies exist.
  for (const auto& jump : Jumps(bridge)) {
    bool is_nat = std::string_view(jump.table) == "nat";
    std::string prefix = std::string("-A ") + jump.chain + " ";
    for (const auto& line : base::Split(is_nat ? saved_nat : saved_filter, '\n')) {
      if (base::StartsWith(line, prefix) && HasTag(line, Tag(bridge, jump.tag))) {
        (is_nat ? nat : filter) += "-D" + line.substr(2) + "\n";
      }
    }
  }
  for (const auto& chain : {DnatChain(bridge), SnatChain(bridge)}) {
    if (HasChain(saved_nat, chain)) nat += "-F " + chain + "\n-X " + chain + "\n";
  }
  if (HasChain(saved_filter, ForwardChain(bridge))) {
    filter += "-F " + ForwardChain(bridge) + "\n-X " + ForwardChain(bridge) + "\n";
  }
  std::string out;
  if (!nat.empty()) out += "*nat\n" + nat + "COMMIT\n";
  if (!filter.empty()) out += "*filter\n" + filter + "COMMIT\n";
  return out;
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv, std::string_view input) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) < 0) return ErrnoStatus("pipe");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) < 0) return ErrnoStatus("pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) < 0) return ErrnoStatus("pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return ErrnoStatus("run " + argv[0], rc);
  base::UniquePid child(pid);
  in_r.reset();
  out_w.reset();
  err_w.reset();

  // A writer that ignores stdin must not kill us with SIGPIPE.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  CommandResult result;
  size_t written = 0;
  if (input.empty()) {
    in_w.reset();
  } else {
    // Non-blocking, so a child that stops reading stdin while we owe it output cannot deadlock.
    ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  }
  while (out_r || err_r) {
    pollfd fds[3];
    int n = 0;
    if (in_w) fds[n++] = {in_w.get(), POLLOUT, 0};
    if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
    if (err_r) fds[n++] = {err_r.get(), POLLIN, 0};
    if (::poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      Status st = ErrnoStatus("poll " + argv[0]);
      pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
      return st;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (in_w && fds[i].fd == in_w.get()) {
        ssize_t w = ::write(in_w.get(), input.data() + written, input.size() - written);
        if (w < 0 && errno != EINTR && errno != EAGAIN) {
          in_w.reset();
        } else if (w > 0 && (written += static_cast<size_t>(w)) == input.size()) {
          in_w.reset();
        }
        continue;
      }
      UniqueFd& fd = (out_r && fds[i].fd == out_r.get()) ? out_r : err_r;
      std::string& sink = (&fd == &out_r) ? result.out : result.err;
      char buf[8192];
      ssize_t r = ::read(fd.get(), buf, sizeof(buf));
      if (r > 0) {
        sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        fd.reset();
      }
    }
  }
  in_w.reset();
  // Drain a pending SIGPIPE so it is not delivered once unblocked.
  timespec zero{};
  while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  int wstatus = 0;
  while (::waitpid(child.get(), &wstatus, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus("wait for " + argv[0]);
  }
  child.release();
  result.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return result;
}

Result<SavedTables> SaveTables() {
  auto r = RunCommand({"iptables-save"});
  if (!r.ok()) return MissingTool(r.status());
  if (r->exit_code != 0) {
    return base::Unavailable("iptables-save failed (exit " + std::to_string(r->exit_code) +
                             "): " + std::string(base::TrimWhitespace(r->err)));
  }
  SavedTables saved;
  std::string* section = nullptr;
  for (const auto& line : base::Split(r->out, '\n')) {
    if (line == "*nat") {
      section = &saved.nat;
    } else if (line == "*filter") {
      section = &saved.filter;
    } else if (!line.empty() && line[0] == '*') {
      section = nullptr;
    }
    if (section != nullptr) *section += line + "\n";
  }
  return saved;
}

Result<std::string> SaveTable(std::string_view table) {
  auto r = RunCommand({"iptables-save", "-t", std::string(table)});
  if (!r.ok()) return MissingTool(r.status());
  if (r->exit_code != 0) {
    return base::Unavailable("iptables-save -t " + std::string(table) + " failed (exit " +
                             std::to_string(r->exit_code) +
                             "): " + std::string(base::TrimWhitespace(r->err)));
  }
  return std::move(r->out);
}

Status Restore(const std::string& script) {
  auto r = RunCommand({"iptables-restore", "-w", "5", "--noflush"}, script);
  if (!r.ok()) return MissingTool(r.status());
  if (r->exit_code != 0) {
    return base::Unavailable("iptables-restore failed (exit " + std::to_string(r->exit_code) +
                             "): " + std::string(base::TrimWhitespace(r->err)) +
                             "\n--- rules applied ---\n" + script);
  }
  return Status::Ok();
}

}  // namespace fjord::net

#include "net/ipam.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "base/strings.h"

namespace fjord::net {
namespace {

namespace fs = std::filesystem;
using base::ErrnoStatus;
using base::InvalidArgument;
using base::Result;
using base::Status;
using base::UniqueFd;

Result<std::string> ReadSmallFile(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + path.string());
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path.string());
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Status WriteNewFile(const fs::path& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return ErrnoStatus("create " + path.string());
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path.string());
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Names in `dir`, skipping dot files (temporaries).
Result<std::vector<std::string>> ListNames(const fs::path& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("list " + dir.string());
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  ::closedir(d);
  return names;
}

Status UnlinkIfExists(const fs::path& path) {
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) return ErrnoStatus("remove " + path.string());
  return Status::Ok();
}

Result<uint32_t> ParseUint(std::string_view s, uint32_t max, std::string_view what) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max) {
    return InvalidArgument(std::string(what) + " " + base::QuoteForDisplay(s) +
                           " is not a number from 0 to " + std::to_string(max));
  }
  return v;
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

}  // namespace

Status ValidateInterfaceName(const std::string& name, std::string_view what) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") {
    return InvalidArgument(std::string(what) + " " + base::QuoteForDisplay(name) +
                           " must be 1 to 15 characters (a Linux interface name)");
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return InvalidArgument(std::string(what) + " " + base::QuoteForDisplay(name) +
                             " may contain only letters, digits, '_', '-' and '.'");
    }
  }
  return Status::Ok();
}

// Ids become file names and iptables comments, so they are restricted to a safe alphabet.
Status ValidateContainerId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 128 && IsNameChar(id[0]) && id[0] != '.' && id[0] != '-';
  for (char c : id) ok = ok && IsNameChar(c);
  if (!ok) {
    return InvalidArgument("container id " + base::QuoteForDisplay(id) +
                           " must be 1 to 128 letters, digits, '_', '-' or '.', starting with a "
                           "letter or digit");
  }
  return Status::Ok();
}

Status ValidatePorts(const std::vector<PortMapping>& ports) {
  std::set<std::pair<uint16_t, std::string>> seen;
  for (const auto& p : ports) {
    std::string name = std::to_string(p.host_port) + ":" + std::to_string(p.container_port) + "/" +
                       base::QuoteForDisplay(p.protocol);
    if (p.protocol != "tcp" && p.protocol != "udp") {
      return InvalidArgument("port mapping " + name + ": protocol must be tcp or udp");
    }
    if (p.host_port == 0 || p.container_port == 0) {
      return InvalidArgument("port mapping " + name + ": ports must be 1 to 65535");
    }
    if (!seen.insert({p.host_port, p.protocol}).second) {
      return InvalidArgument("port mapping " + name + ": host port " + std::to_string(p.host_port) +
                             "/" + p.protocol + " is published twice");
    }
  }
  return Status::Ok();
}

Result<uint32_t> ParseIpv4(std::string_view text) {
  in_addr a{};
  std::string s(text);
  // inet_pton accepts exactly dotted-quad decimal, no shorthand forms.
  if (s.size() > 15 || ::inet_pton(AF_INET, s.c_str(), &a) != 1) {
    return InvalidArgument("IPv4 address " + base::QuoteForDisplay(text) +
                           " is not in dotted-quad form like 10.88.0.1");
  }
  return ntohl(a.s_addr);
}

std::string FormatIpv4(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 255) + "." +
         std::to_string((address >> 8) & 255) + "." + std::to_string(address & 255);
}

std::string Subnet::ToString() const {
  return FormatIpv4(network) + "/" + std::to_string(prefix_length);
}

Result<Subnet> ParseSubnet(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return InvalidArgument("subnet " + base::QuoteForDisplay(text) +
                           " has no prefix length; write it as CIDR, e.g. 10.88.0.0/16");
  }
  auto addr = ParseIpv4(text.substr(0, slash));
  if (!addr.ok()) return addr.status().Wrap("subnet " + base::QuoteForDisplay(text));
  auto prefix = ParseUint(text.substr(slash + 1), 32, "prefix length");
  if (!prefix.ok()) return prefix.status().Wrap("subnet " + base::QuoteForDisplay(text));
  Subnet subnet{*addr, static_cast<int>(*prefix)};
  if (subnet.prefix_length < 8 || subnet.prefix_length > 30) {
    return InvalidArgument("subnet " + base::QuoteForDisplay(text) +
                           ": prefix length must be 8 to 30 (room for a gateway and at least "
                           "one container)");
  }
  if ((subnet.network & subnet.Mask()) != subnet.network) {
    Subnet fixed{subnet.network & subnet.Mask(), subnet.prefix_length};
    return InvalidArgument("subnet " + base::QuoteForDisplay(text) +
                           " has host bits set; did you mean " + fixed.ToString() + "?");
  }
  return subnet;
}

Result<ProcessIdentity> ReadProcessIdentity(pid_t pid) {
  std::string proc = "/proc/" + std::to_string(pid);
  auto stat = ReadSmallFile(proc + "/stat");
  if (!stat.ok()) return stat.status();
  // The command name (field 2) may contain spaces and ')'; fields resume after the last ')'.
  auto close = stat->rfind(')');
  if (close == std::string::npos) return base::Internal("unparsable " + proc + "/stat");
  auto fields = base::SplitWhitespace(std::string_view(*stat).substr(close + 1));
  // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
  if (fields.size() < 20) return base::Internal("short " + proc + "/stat");
  ProcessIdentity id;
  std::from_chars(fields[19].data(), fields[19].data() + fields[19].size(), id.start_time);
  struct stat st {};
  if (::stat((proc + "/ns/net").c_str(), &st) < 0) return ErrnoStatus("stat " + proc + "/ns/net");
  id.netns_inode = st.st_ino;
  return id;
}

std::string EncodeLease(const Lease& lease) {
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : lease.ports) {
    ports.push_back({{"host_port", p.host_port},
                     {"container_port", p.container_port},
                     {"protocol", p.protocol}});
  }
  nlohmann::json j = {{"container_id", lease.container_id},
                      {"address", FormatIpv4(lease.address)},
                      {"host_veth", lease.host_veth},
                      {"pid", lease.pid},
                      {"pid_start_time", lease.owner.start_time},
                      {"netns_inode", lease.owner.netns_inode},
                      {"ports", ports}};
  return j.dump() + "\n";
}

Result<Lease> DecodeLease(std::string_view json, std::string_view where) {
  try {
    auto j = nlohmann::json::parse(json);
    Lease lease;
    lease.container_id = j.at("container_id").get<std::string>();
    auto addr = ParseIpv4(j.at("address").get<std::string>());
    if (!addr.ok()) return addr.status().Wrap(std::string(where));
    lease.address = *addr;
    lease.host_veth = j.at("host_veth").get<std::string>();
    // Range-checked by hand: get<uint16_t>() would silently wrap 70000.
    auto ranged = [&](const nlohmann::json& v, int64_t lo, int64_t hi,
                      const char* name) -> Result<int64_t> {
      int64_t n = v.get<int64_t>();
      if (n < lo || n > hi) {
        return base::Internal(std::string(where) + ": corrupt lease: " + name + " " +
                              std::to_string(n) + " is out of range");
      }
      return n;
    };
    FJORD_ASSIGN_OR_RETURN(int64_t pid, ranged(j.at("pid"), 1, INT32_MAX, "pid"));
    lease.pid = static_cast<pid_t>(pid);
    lease.owner.start_time = j.at("pid_start_time").get<uint64_t>();
    lease.owner.netns_inode = j.at("netns_inode").get<uint64_t>();
    for (const auto& p : j.at("ports")) {
      FJORD_ASSIGN_OR_RETURN(int64_t host, ranged(p.at("host_port"), 0, 65535, "port"));
      FJORD_ASSIGN_OR_RETURN(int64_t ctr, ranged(p.at("container_port"), 0, 65535, "port"));
      lease.ports.push_back({static_cast<uint16_t>(host), static_cast<uint16_t>(ctr),
                             p.at("protocol").get<std::string>()});
    }
    // Lease fields end up in file names, interface names and iptables rules.
    Status st = ValidateContainerId(lease.container_id);
    if (st.ok()) st = ValidateInterfaceName(lease.host_veth, "host_veth");
    if (st.ok()) st = ValidatePorts(lease.ports);
    if (!st.ok()) return st.Wrap(std::string(where) + ": corrupt lease");
    return lease;
  } catch (const nlohmann::json::exception& e) {
    return base::Internal(std::string(where) + ": corrupt lease: " + e.what() +
                          "; remove the file if no container uses it");
  }
}

Result<LeaseStore> LeaseStore::Open(const fs::path& state_dir) {
  if (state_dir.empty()) return InvalidArgument("state_dir is empty; set BridgeConfig.state_dir");
  std::error_code ec;
  for (const char* sub : {"leases", "by-id"}) {
    fs::create_directories(state_dir / sub, ec);
    if (ec) {
      return base::Status(base::Code::kIo,
                          "create " + (state_dir / sub).string() + ": " + ec.message());
    }
  }
  return LeaseStore(state_dir);
}

Result<UniqueFd> LeaseStore::Lock() const {
  fs::path path = dir_ / "lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return ErrnoStatus("open lock " + path.string());
  while (::flock(fd.get(), LOCK_EX) < 0) {
    if (errno != EINTR) return ErrnoStatus("lock " + path.string());
  }
  return fd;
}

Result<std::vector<Lease>> LeaseStore::List() const {
  FJORD_ASSIGN_OR_RETURN(auto names, ListNames(dir_ / "leases"));
  std::vector<Lease> leases;
  for (const auto& name : names) {
    fs::path path = dir_ / "leases" / name;
    auto text = ReadSmallFile(path);
    if (!text.ok()) {
      if (text.status().sys_errno() == ENOENT) continue;  // removed meanwhile
      return text.status();
    }
    FJORD_ASSIGN_OR_RETURN(Lease lease, DecodeLease(*text, path.string()));
    leases.push_back(std::move(lease));
  }
  return leases;
}

Result<std::optional<Lease>> LeaseStore::Find(const std::string& container_id) const {
  fs::path link = dir_ / "by-id" / container_id;
  char target[64];
  ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
  if (n < 0) {
    if (errno == ENOENT) return std::optional<Lease>();
    return ErrnoStatus("read link " + link.string());
  }
  fs::path path = dir_ / "leases" / std::string(target, static_cast<size_t>(n));
  auto text = ReadSmallFile(path);
  if (!text.ok()) {
    if (text.status().sys_errno() == ENOENT) return std::optional<Lease>();
    return text.status();
  }
  FJORD_ASSIGN_OR_RETURN(Lease lease, DecodeLease(*text, path.string()));
  if (lease.container_id != container_id) return std::optional<Lease>();
  return std::optional<Lease>(std::move(lease));
}

Result<uint32_t> LeaseStore::Allocate(const Subnet& subnet) const {
  FJORD_ASSIGN_OR_RETURN(auto names, ListNames(dir_ / "leases"));
  std::set<uint32_t> used;
  for (const auto& name : names) {
    if (auto a = ParseIpv4(name); a.ok()) used.insert(*a);
  }
  uint32_t start = subnet.FirstHost();
  if (auto last = ReadSmallFile(dir_ / "last"); last.ok()) {
    auto a = ParseIpv4(base::TrimWhitespace(*last));
    if (a.ok() && *a >= subnet.FirstHost() && *a < subnet.LastHost()) start = *a + 1;
  }
  uint64_t count = uint64_t{subnet.LastHost()} - subnet.FirstHost() + 1;
  uint32_t candidate = start;
  for (uint64_t i = 0; i < count; ++i) {
    if (!used.count(candidate)) {
      FJORD_RETURN_IF_ERROR(WriteNewFile(dir_ / "last", FormatIpv4(candidate) + "\n"));
      return candidate;
    }
    candidate = candidate == subnet.LastHost() ? subnet.FirstHost() : candidate + 1;
  }
  return Status(base::Code::kResourceExhausted,
                "subnet " + subnet.ToString() + " has no free address: all " +
                    std::to_string(count) +
                    " container addresses are leased; detach containers, run recovery to "
                    "reclaim leases of dead ones, or configure a larger subnet");
}

Status LeaseStore::Write(const Lease& lease) const {
  std::string name = FormatIpv4(lease.address);
  fs::path tmp = dir_ / "leases" / ("." + name + ".tmp");
  fs::path path = dir_ / "leases" / name;
  FJORD_RETURN_IF_ERROR(WriteNewFile(tmp, EncodeLease(lease)));
  // link() fails if the address is already leased, where rename() would overwrite it.
  if (::link(tmp.c_str(), path.c_str()) < 0) {
    Status st = ErrnoStatus("write lease " + path.string());
    ::unlink(tmp.c_str());
    return st;
  }
  ::unlink(tmp.c_str());
  fs::path link = dir_ / "by-id" / lease.container_id;
  if (::symlink(name.c_str(), link.c_str()) < 0) {
    Status st = ErrnoStatus("write lease link " + link.string());
    ::unlink(path.c_str());
    return st;
  }
  return Status::Ok();
}

Status LeaseStore::Remove(const Lease& lease) const {
  fs::path link = dir_ / "by-id" / lease.container_id;
  char target[64];
  ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
  // Only remove the link if it still names this lease's address.
  if (n > 0 && std::string(target, static_cast<size_t>(n)) == FormatIpv4(lease.address)) {
    FJORD_RETURN_IF_ERROR(UnlinkIfExists(link));
  }
  return UnlinkIfExists(dir_ / "leases" / FormatIpv4(lease.address));
}

Status LeaseStore::RemoveDanglingLinks() const {
  FJORD_ASSIGN_OR_RETURN(auto names, ListNames(dir_ / "by-id"));
  for (const auto& id : names) {
    FJORD_ASSIGN_OR_RETURN(auto lease, Find(id));
    if (!lease) FJORD_RETURN_IF_ERROR(UnlinkIfExists(dir_ / "by-id" / id));
  }
  return Status::Ok();
}

}  // namespace fjord::net

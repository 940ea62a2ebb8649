#include "agent/agent.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sched.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "api/native_client.h"
#include "base/fd.h"
#include "base/state_root.h"
#include "base/strings.h"
#include "http/server.h"

namespace fjord::agent {
namespace {

using base::Result;
using base::Status;
using Millis = std::chrono::milliseconds;

void Log(std::string_view message) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "%s fjord agent: %.*s\n", stamp, static_cast<int>(message.size()),
               message.data());
}

bool ValidMachineId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

Result<std::string> ReadSmallFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return base::ErrnoStatus("read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view text) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return base::ErrnoStatus("write " + tmp.string());
    out << text;
    if (!out.flush()) return base::ErrnoStatus("write " + tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return base::Internal("rename " + tmp.string() + ": " + ec.message());
  return Status::Ok();
}

std::string RandomHexId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool IsConnectionError(const Status& st) {
  return st.code() == base::Code::kUnavailable || st.code() == base::Code::kDeadlineExceeded ||
         st.code() == base::Code::kIo;
}

// "ADDR:PORT" -> (addr, port).
Result<std::pair<std::string, uint16_t>> ParseListen(std::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return base::InvalidArgument("--listen " + base::QuoteForDisplay(listen) +
                                 ": expected ADDR:PORT, e.g. 10.0.0.5:0");
  }
  std::string port_text(listen.substr(colon + 1));
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port_text) > 65535) {
    return base::InvalidArgument("--listen " + base::QuoteForDisplay(listen) +
                                 ": the port must be 0..65535");
  }
  return std::make_pair(std::string(listen.substr(0, colon)),
                        static_cast<uint16_t>(std::stoi(port_text)));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Identity, resources, address

std::filesystem::path DefaultStateDir() { return base::StateRoot() / "agent"; }

Result<std::string> ResolveMachineId(const std::string& flag,
                                     const std::filesystem::path& state_dir,
                                     bool is_default_state_dir,
                                     const std::filesystem::path& etc_machine_id) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return base::Internal("create state dir " + state_dir.string() + ": " + ec.message());
  const std::filesystem::path kept = state_dir / "machine-id";
  std::string id;
  if (!flag.empty()) {
    if (!ValidMachineId(flag)) {
      return base::InvalidArgument("--machine-id " + base::QuoteForDisplay(flag) +
                                   ": use 1 to 64 letters, digits, '-', '_' or '.'");
    }
    id = flag;
  } else if (std::filesystem::exists(kept, ec)) {
    FJORD_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(kept));
    std::string_view trimmed = base::TrimWhitespace(text);
    if (!ValidMachineId(trimmed)) {
      return base::InvalidArgument(kept.string() + ": not a machine id (" +
                                   base::QuoteForDisplay(trimmed) +
                                   "); delete the file to get a new one or pass --machine-id");
    }
    return std::string(trimmed);
  } else if (is_default_state_dir && std::filesystem::exists(etc_machine_id, ec)) {
    FJORD_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(etc_machine_id));
    std::string_view trimmed = base::TrimWhitespace(text);
    id = ValidMachineId(trimmed) ? std::string(trimmed) : RandomHexId();
  } else {
    id = RandomHexId();
  }
  FJORD_RETURN_IF_ERROR(WriteFileAtomic(kept, id + "\n"));
  return id;
}

Result<int64_t> ParseMemTotal(std::string_view meminfo) {
  for (const std::string& line : base::Split(meminfo, '\n')) {
    if (!base::StartsWith(line, "MemTotal:")) continue;
    auto words = base::SplitWhitespace(std::string_view(line).substr(9));
    if (words.empty()) break;
    int64_t value = 0;
    for (char c : words[0]) {
      if (c < '0' || c > '9' || value > (INT64_MAX / 10240)) {
        return base::InvalidArgument("/proc/meminfo: bad MemTotal " + base::QuoteForDisplay(line));
      }
      value = value * 10 + (c - '0');
    }
    bool kb = words.size() > 1 && base::AsciiLower(words[1]) == "kb";
    return kb ? value * 1024 : value;
  }
  return base::NotFound("/proc/meminfo: no MemTotal line");
}

Result<api::Resources> DetectResources() {
  api::Resources r;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return base::ErrnoStatus("sched_getaffinity");
  r.cpu_millis = static_cast<int64_t>(CPU_COUNT(&set)) * 1000;
  FJORD_ASSIGN_OR_RETURN(std::string meminfo, ReadSmallFile("/proc/meminfo"));
  FJORD_ASSIGN_OR_RETURN(r.memory_bytes, ParseMemTotal(meminfo));
  return r;
}

Result<std::string> SourceAddressFor(std::string_view server_url) {
  FJORD_ASSIGN_OR_RETURN(http::BaseUrl url, http::BaseUrl::Parse(server_url));
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(url.port);
  if (int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return base::Unavailable("resolve " + url.host + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
  base::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return base::ErrnoStatus("socket");
  // A UDP connect only picks the route; nothing is sent.
  if (::connect(fd.get(), res->ai_addr, res->ai_addrlen) != 0) {
    return base::ErrnoStatus("route to " + url.host);
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return base::ErrnoStatus("getsockname");
  }
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &local.sin_addr, text, sizeof text);
  return std::string(text);
}

Result<std::map<std::string, std::string>> ParseMetadata(std::string_view text) {
  std::map<std::string, std::string> out;
  if (base::TrimWhitespace(text).empty()) return out;
  for (const std::string& item : base::Split(text, ',')) {
    std::string_view kv = base::TrimWhitespace(item);
    size_t eq = kv.find('=');
    std::string_view key = eq == std::string_view::npos ? kv : kv.substr(0, eq);
    bool key_ok = !key.empty();
    for (char c : key) {
      key_ok &= std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    }
    if (eq == std::string_view::npos || !key_ok) {
      return base::InvalidArgument("--metadata item " + base::QuoteForDisplay(kv) +
                                   ": expected key=value (key: letters, digits, -_.), e.g. "
                                   "region=no-oslo");
    }
    out[std::string(key)] = std::string(kv.substr(eq + 1));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The running agent

struct Agent::Core {
  AgentOptions options;
  api::MachineRegistration registration;

  std::mutex mu;  // guards the flags below; cv wakes the loops
  std::condition_variable cv;
  bool stopping = false;
  bool is_registered = false;
  bool report_dirty = true;
  int64_t heartbeat_ms = 1000;

  std::atomic<size_t> current_server{0};
  std::mutex apply_mu;  // an Apply never runs after Stop detached the host

  std::shared_ptr<UnitHost> host;
  std::unique_ptr<http::HttpServer> api_server;
  std::string url;
  std::thread heartbeat_thread, reporter_thread, poll_thread;

  // Waits `d` or until stopping; false when stopping.
  bool Sleep(Millis d) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, d, [&] { return stopping; });
  }
  bool Stopping() {
    std::lock_guard lock(mu);
    return stopping;
  }
  void MarkDirty() {
    {
      std::lock_guard lock(mu);
      report_dirty = true;
    }
    cv.notify_all();
  }
  void Forget() {  // the server does not know us: register again
    {
      std::lock_guard lock(mu);
      is_registered = false;
    }
    cv.notify_all();
  }

  void HeartbeatLoop();
  void PollLoop();
  void ReportLoop();
  std::vector<api::UnitStatusReport> States() const {
    std::vector<api::UnitStatusReport> states = host->List();
    for (auto& s : states) s.state.machine_id = registration.id;
    return states;
  }
  Status StartApi();
};

namespace {

// One thread's clients, one per server, with failover on connection errors.
class Servers {
 public:
  Servers(const AgentOptions& options, std::atomic<size_t>& current, Millis request_timeout)
      : urls_(options.servers), current_(current), clients_(options.servers.size()) {
    http_options_.connect_timeout = Millis(2'000);
    http_options_.request_timeout = request_timeout;
    http_options_.unreachable_hint = "is `fjord server` running there? check --server";
  }

  // Runs `f` against the current server; on a connection error the next server becomes current.
  template <typename F>
  auto Call(F f) -> decltype(f(std::declval<api::NativeClient&>())) {
    size_t i = current_.load() % urls_.size();
    if (!clients_[i]) {
      auto c = api::NativeClient::Create(urls_[i], http_options_);
      if (!c.ok()) return c.status();
      clients_[i] = std::move(*c);
    }
    auto result = f(*clients_[i]);
    if (!base::StatusOf(result).ok() && IsConnectionError(base::StatusOf(result))) {
      clients_[i].reset();  // a fresh connection next time
      current_.compare_exchange_strong(i, (i + 1) % urls_.size());
    }
    return result;
  }

 private:
  std::vector<std::string> urls_;
  std::atomic<size_t>& current_;
  std::vector<std::unique_ptr<api::NativeClient>> clients_;
  http::HttpClient::Options http_options_;
};

// Exponential backoff between failed attempts; logs a failure once until it changes.
class Backoff {
 public:
  explicit Backoff(Millis max) : max_(max) {}
  Millis Next(const Status& st) {
    std::string message(st.message());
    if (message != last_) Log(message);
    last_ = std::move(message);
    Millis d = delay_;
    delay_ = std::min(max_, delay_ * 2);
    return d;
  }
  void Reset() {
    if (!last_.empty()) Log("server reachable again");
    last_.clear();
    delay_ = Millis(100);
  }

 private:
  Millis max_;
  Millis delay_{100};
  std::string last_;
};

}  // namespace

void Agent::Core::HeartbeatLoop() {
  Servers servers(options, current_server, Millis(10'000));
  Backoff backoff(options.max_backoff);
  const std::string& id = registration.id;
  while (!Stopping()) {
    bool need_register;
    int64_t interval;
    {
      std::lock_guard lock(mu);
      need_register = !is_registered;
      interval = heartbeat_ms;
    }
    if (need_register) {
      auto reply = servers.Call([&](api::NativeClient& c) { return c.Register(registration); });
      if (!reply.ok()) {
        Sleep(backoff.Next(reply.status()));
        continue;
      }
      backoff.Reset();
      {
        std::lock_guard lock(mu);
        is_registered = true;
        report_dirty = true;  // a server that forgot us forgot our states too
        heartbeat_ms = std::max<int64_t>(10, reply->heartbeat_interval_ms);
        interval = heartbeat_ms;
      }
      cv.notify_all();
    }
    if (!Sleep(Millis(interval))) return;
    Status st = servers.Call([&](api::NativeClient& c) { return c.Heartbeat(id); });
    if (st.code() == base::Code::kNotFound) {
      Log("the server does not know this machine: registering again");
      Forget();
    } else if (!st.ok()) {
      Sleep(backoff.Next(st));
    } else {
      backoff.Reset();
    }
  }
}

void Agent::Core::PollLoop() {
  Servers servers(options, current_server, options.poll_timeout + Millis(10'000));
  Backoff backoff(options.max_backoff);
  std::optional<int64_t> index;
  std::optional<std::vector<api::ScheduledUnit>> applied;
  for (;;) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stopping || is_registered; });
      if (stopping) return;
    }
    auto schedule = servers.Call([&](api::NativeClient& c) {
      return c.GetSchedule(registration.id, index, options.poll_timeout);
    });
    if (!schedule.ok()) {
      index.reset();  // another server, or a restarted one: start from its present
      if (schedule.status().code() == base::Code::kNotFound) {
        Forget();
        continue;
      }
      // Units keep running as last applied while no server answers.
      if (!Sleep(backoff.Next(schedule.status()))) return;
      continue;
    }
    backoff.Reset();
    if (!applied || *applied != schedule->units) {
      std::lock_guard lock(apply_mu);
      if (Stopping()) return;
      host->Apply(schedule->units);
      applied = schedule->units;
    }
    index = schedule->revision;
  }
}

void Agent::Core::ReportLoop() {
  Servers servers(options, current_server, Millis(10'000));
  Backoff backoff(options.max_backoff);
  for (;;) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stopping || (report_dirty && is_registered); });
      if (stopping) return;
      // Changes within the debounce window go out in one report.
      if (cv.wait_for(lock, options.report_debounce, [&] { return stopping; })) return;
      report_dirty = false;
    }
    api::StateReport report;
    report.states = States();
    Status st =
        servers.Call([&](api::NativeClient& c) { return c.ReportStates(registration.id, report); });
    if (st.ok()) {
      backoff.Reset();
      continue;
    }
    MarkDirty();
    if (st.code() == base::Code::kNotFound) {
      Forget();
      continue;
    }
    if (!Sleep(backoff.Next(st))) return;
  }
}

Status Agent::Core::StartApi() {
  http::Router router;
  std::shared_ptr<UnitHost> h = host;
  std::string id = registration.id;
  FJORD_RETURN_IF_ERROR(router.AddSync("GET", "/agent/v1/units", [this](const http::Request&) {
    api::StateReport report;
    report.states = States();
    return http::Response::Json(200, api::ToJson(report));
  }));
  FJORD_RETURN_IF_ERROR(router.AddSync(
      "GET", "/agent/v1/units/{name}/status",
      [h, id](const http::Request& r) {
        std::string name(r.Param("name"));
        auto status = h->Get(name);
        if (!status.ok()) {
          return http::JsonError(404, "unit `" + name + "` is not on machine " + id);
        }
        if (r.query.Get("format").value_or("") == "json") {
          status->state.machine_id = id;
          return http::Response::Json(200, api::ToJson(*status));
        }
        return http::Response::Text(200, h->StatusText(name));
      },
      http::Dispatch::kWorker));
  FJORD_RETURN_IF_ERROR(router.Add(
      "GET", "/agent/v1/units/{name}/journal",
      [h, id](const http::Request& r, http::Responder out) {
        std::string name(r.Param("name"));
        int64_t lines = 10;
        if (auto v = r.query.Get("lines")) {
          char* end = nullptr;
          lines = std::strtoll(v->c_str(), &end, 10);
          if (v->empty() || *end != '\0' || lines < 0) {
            out.Respond(http::JsonError(400, "lines: expected a count >= 0", "lines"));
            return;
          }
        }
        std::string follow_text = r.query.Get("follow").value_or("false");
        bool follow = follow_text == "true" || follow_text == "1";
        if (!h->Get(name).ok()) {
          out.Respond(http::JsonError(404, "unit `" + name + "` is not on machine " + id));
          return;
        }
        // A follow stream may last for days: its own thread, not the worker pool.
        std::thread([h, name, lines, follow, out] {
          out.StartStream(200);
          Status st =
              h->Journal(name, static_cast<size_t>(lines), follow, [&out](std::string_view line) {
                if (line.empty()) return !out.cancelled();
                std::string chunk(line);
                if (chunk.back() != '\n') chunk += '\n';
                return out.Write(std::move(chunk));
              });
          if (!st.ok() && !out.cancelled()) {
            (void)out.Write("-- journal of " + name + " ended: " + std::string(st.message()) +
                            "\n");
          }
          out.Finish();
        }).detach();
      }));

  http::HttpServer::Options server_options;
  if (options.listen.empty()) {
    server_options.address = registration.primary_ip;
  } else {
    FJORD_ASSIGN_OR_RETURN(auto listen, ParseListen(options.listen));
    server_options.address = listen.first;
    server_options.port = listen.second;
  }
  server_options.worker_threads = 2;
  api_server = std::make_unique<http::HttpServer>(server_options, std::move(router));
  FJORD_RETURN_IF_ERROR(api_server->Start().Wrap("agent API"));
  std::string advertised = server_options.address;
  if (advertised == "0.0.0.0" || advertised.empty()) advertised = registration.primary_ip;
  url = "http://" + advertised + ":" + std::to_string(api_server->port());
  return Status::Ok();
}

Result<std::unique_ptr<Agent>> Agent::Start(AgentOptions options) {
  if (options.servers.empty()) {
    return base::InvalidArgument("no server given: pass --server http://HOST:7777");
  }
  for (const std::string& s : options.servers) {
    if (auto u = http::BaseUrl::Parse(s); !u.ok()) return u.status().Wrap("--server " + s);
  }
  bool is_default_dir = options.state_dir.empty();
  if (is_default_dir) options.state_dir = DefaultStateDir();
  auto core = std::make_shared<Core>();
  api::MachineRegistration& reg = core->registration;
  FJORD_ASSIGN_OR_RETURN(reg.id,
                         ResolveMachineId(options.machine_id, options.state_dir, is_default_dir));
  FJORD_ASSIGN_OR_RETURN(reg.capacity, DetectResources());
  if (!options.public_ip.empty()) {
    in_addr probe{};
    if (::inet_pton(AF_INET, options.public_ip.c_str(), &probe) != 1) {
      return base::InvalidArgument("--public-ip " + base::QuoteForDisplay(options.public_ip) +
                                   ": expected an IPv4 address");
    }
    reg.primary_ip = options.public_ip;
  } else {
    auto ip = SourceAddressFor(options.servers.front());
    if (!ip.ok()) {
      return ip.status().Wrap("find this machine's address (pass --public-ip)");
    }
    reg.primary_ip = *ip;
  }
  reg.metadata = options.metadata;
  reg.version = options.version;
  core->options = std::move(options);

  UnitHostContext context;
  context.state_dir = core->options.state_dir / "units";
  context.machine_id = reg.id;
  char hostname[256] = {};
  ::gethostname(hostname, sizeof hostname - 1);
  context.hostname = hostname;
  context.cgroup_parent = core->options.cgroup_parent;
  Core* raw = core.get();
  context.on_change = [raw] { raw->MarkDirty(); };
  if (!core->options.host_factory) {
    return base::InvalidArgument("no unit host: set AgentOptions::host_factory");
  }
  FJORD_ASSIGN_OR_RETURN(std::unique_ptr<UnitHost> host, core->options.host_factory(context));
  core->host = std::move(host);

  FJORD_RETURN_IF_ERROR(core->StartApi());
  reg.agent_url = core->url;

  core->heartbeat_thread = std::thread([raw] { raw->HeartbeatLoop(); });
  core->reporter_thread = std::thread([raw] { raw->ReportLoop(); });
  // The poll thread owns a reference: Stop() does not wait out a long-poll in flight.
  core->poll_thread = std::thread([core] { core->PollLoop(); });
  return std::unique_ptr<Agent>(new Agent(std::move(core)));
}

Agent::Agent(std::shared_ptr<Core> core) : core_(std::move(core)) {}
Agent::~Agent() { Stop(true); }

std::string Agent::machine_id() const { return core_->registration.id; }
std::string Agent::url() const { return core_->url; }
const api::MachineRegistration& Agent::registration() const { return core_->registration; }
bool Agent::registered() const {
  std::lock_guard lock(core_->mu);
  return core_->is_registered;
}

void Agent::Stop(bool leave_units_running) {
  {
    std::lock_guard lock(core_->mu);
    if (core_->stopping) return;
    core_->stopping = true;
  }
  core_->cv.notify_all();
  {
    std::lock_guard lock(core_->apply_mu);
    if (leave_units_running) {
      core_->host->Detach();
    } else {
      core_->host->StopAll();
    }
  }
  core_->api_server->Stop();
  if (core_->heartbeat_thread.joinable()) core_->heartbeat_thread.join();
  if (core_->reporter_thread.joinable()) core_->reporter_thread.join();
  if (core_->poll_thread.joinable()) core_->poll_thread.detach();
}

}  // namespace fjord::agent

// Every write the SQLite store acknowledged survives kill -9 of its process, in both sync modes,
// and the reopened store's revision history has no gaps. Several rounds on one file, each killed
// at a random moment (the seed is printed so a failure can be replayed with FJORD_SEED).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "base/fd.h"
#include "durability_shared.h"
#include "store/store.h"

namespace fjord::store {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/var/tmp/fjord-durability-XXXXXX";  // a real disk, not tmpfs
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Starts the writer with stdout on a pipe; returns the pid owner and the pipe's read end.
std::pair<base::UniquePid, base::UniqueFd> StartWriter(const std::string& db, int round,
                                                       const char* sync) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) std::abort();
  base::UniqueFd read_end(fds[0]), write_end(fds[1]);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(write_end.get(), STDOUT_FILENO);
    std::string r = std::to_string(round);
    execl(FJORD_DURABILITY_WRITER, FJORD_DURABILITY_WRITER, db.c_str(), r.c_str(), "6", sync,
          static_cast<char*>(nullptr));
    _exit(127);
  }
  return {base::UniquePid(pid), std::move(read_end)};
}

// Reads complete lines "<key> <rev>" into `acked` until `until`; false if EOF came first.
bool ReadAcks(int fd, std::string& partial, std::map<std::string, Revision>& acked,
              Clock::time_point until) {
  while (true) {
    auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count();
    if (left <= 0) return true;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    partial.append(buf, n);
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string line = partial.substr(start, nl - start);
      size_t sp = line.find(' ');
      acked[line.substr(0, sp)] = std::stoll(line.substr(sp + 1));
    }
    partial.erase(0, start);
  }
}

void VerifyStore(const std::string& db, const std::map<std::string, Revision>& acked) {
  auto opened = OpenSqliteStore(db);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& s = **opened;
  Revision current = s.CurrentRevision();
  size_t checked = 0;
  for (const auto& [key, rev] : acked) {
    auto kv = s.Get(key);
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    ASSERT_TRUE(kv->has_value()) << "acknowledged key " << key << " (revision " << rev
                                 << ") lost after kill -9";
    EXPECT_EQ((*kv)->value, durability::ValueFor(key)) << key;
    EXPECT_EQ((*kv)->mod_revision, rev) << key;
    EXPECT_LE(rev, current);
    ++checked;
  }
  EXPECT_EQ(checked, acked.size());
  // The history replays without gaps: every revision 1..current is one txn's events, in order,
  // and replaying them gives exactly the current contents.
  const std::string zero(1, '\0');
  auto w = s.Watch(WatchRequest{zero, zero, 1});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::map<std::string, KeyValue> replay;
  Revision last = 0;
  while (last < current) {
    auto events = (*w)->Next(Clock::now() + std::chrono::seconds(5));
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    ASSERT_FALSE(events->empty()) << "history stops at revision " << last << " of " << current;
    for (const Event& ev : *events) {
      Revision r = ev.kv.mod_revision;
      ASSERT_TRUE(r == last || r == last + 1) << "revision " << r << " after " << last;
      last = r;
      replay[ev.kv.key] = ev.kv;
    }
  }
  auto all = s.Range(RangeRequest{zero, zero, 0, 0, false});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->kvs.size(), replay.size());
  for (const KeyValue& kv : all->kvs) EXPECT_EQ(replay[kv.key], kv);
}

TEST(StoreDurabilityTest, AcknowledgedWritesSurviveKill9) {
  TempDir dir;
  std::string db = (dir.path() / "state.db").string();
  unsigned seed = std::random_device{}();
  if (const char* s = getenv("FJORD_SEED")) seed = static_cast<unsigned>(std::stoul(s));
  std::printf("FJORD_SEED=%u\n", seed);
  std::mt19937 rng(seed);
  std::map<std::string, Revision> acked;
  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    const char* sync = round % 2 == 0 ? "normal" : "full";
    auto [pid, out] = StartWriter(db, round, sync);
    std::string partial;
    size_t before = acked.size();
    // Wait for the first acks (the store is open), then kill at a random moment.
    auto open_deadline = Clock::now() + std::chrono::seconds(10);
    while (acked.size() == before && Clock::now() < open_deadline) {
      ASSERT_TRUE(ReadAcks(out.get(), partial, acked, Clock::now() + milliseconds(20)))
          << "round " << round << ": the writer exited before acknowledging anything";
    }
    ASSERT_GT(acked.size(), before) << "round " << round << ": the writer acknowledged nothing";
    auto kill_at = Clock::now() + milliseconds(std::uniform_int_distribution<int>(20, 600)(rng));
    ASSERT_TRUE(ReadAcks(out.get(), partial, acked, kill_at))
        << "round " << round << ": writer died";
    ASSERT_EQ(kill(pid.get(), SIGKILL), 0);
    // Lines written before the kill are still in the pipe: they were acknowledged too.
    EXPECT_FALSE(ReadAcks(out.get(), partial, acked, Clock::now() + std::chrono::seconds(10)));
    int status = 0;
    ASSERT_EQ(waitpid(pid.release(), &status, 0) > 0, true);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "round " << round << ": the writer exited on its own (status " << status << ")";
    std::printf("round %d (%s): %zu acknowledged writes so far\n", round, sync, acked.size());
    VerifyStore(db, acked);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace fjord::store

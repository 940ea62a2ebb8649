// Real bridges, veths, namespaces and iptables rules. Each test owns a Sandbox (unique bridge,
// subnet, namespaces, state dir) that removes everything on exit; traffic goes only to loopback
// and to the test's own namespaces.
#include "net/bridge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <set>

#include "base/strings.h"
#include "net/ipam.h"
#include "net/iptables.h"
#include "net/net_testing.h"
#include "net/netlink.h"

namespace fjord::net {
namespace {

using ::testing::HasSubstr;
using testing::Sandbox;

bool LinkExists(const std::string& name) {
  auto nl = Netlink::Open();
  return nl.ok() && nl->LinkIndex(name).ok();
}

// Rules tagged for `bridge` (in any chain) in the nat and filter tables.
int CountRules(const std::string& bridge, const std::string& what = "") {
  int n = 0;
  for (const char* table : {"nat", "filter"}) {
    auto saved = SaveTable(table);
    if (!saved.ok()) return -1;
    std::string tag = "fjord:" + bridge + ":" + what;
    size_t at = 0;
    while ((at = saved->find(tag, at)) != std::string::npos) ++n, ++at;
  }
  return n;
}

size_t LeaseFiles(const std::filesystem::path& state_dir) {
  size_t n = 0;
  for (const char* sub : {"leases", "by-id"}) {
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(state_dir / sub, ec);
         !ec && it != std::filesystem::directory_iterator(); ++it) {
      ++n;
    }
  }
  return n;
}

class BridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (bridges, namespaces, iptables)";
  }
  void TearDown() override {
    net_.reset();
    sandbox_.reset();  // removes namespaces, bridge, chains and state even after a failure
  }
  void OpenNetwork(int prefix_length = 24) {
    sandbox_ = std::make_unique<Sandbox>(prefix_length);
    ASSERT_FALSE(sandbox_->subnet().empty());
    auto net = BridgeNetwork::Open(sandbox_->Config());
    ASSERT_TRUE(net.ok()) << net.status().ToString();
    net_ = std::move(*net);
  }
  pid_t AddNetns(const std::string& suffix) {
    auto pid = sandbox_->AddNetns(suffix);
    EXPECT_TRUE(pid.ok()) << pid.status().ToString();
    return pid.ok() ? *pid : -1;
  }
  // Exit code of a command run inside netns `suffix`, -1 if it could not run.
  int Exec(const std::string& suffix, const std::vector<std::string>& argv) {
    auto rc = sandbox_->Exec(suffix, argv);
    EXPECT_TRUE(rc.ok()) << rc.status().ToString();
    return rc.ok() ? *rc : -1;
  }
  // Exit code of one ping; waits up to `wait_s` for the reply.
  int Ping(const std::string& from, const std::string& to, int wait_s = 2) {
    auto rc = sandbox_->Exec(from, {"busybox", "ping", "-c1", "-W" + std::to_string(wait_s), to});
    return rc.ok() ? *rc : -1;
  }

  std::unique_ptr<Sandbox> sandbox_;
  std::unique_ptr<BridgeNetwork> net_;
};

TEST_F(BridgeTest, TwoContainersReachEachOtherAndDetachLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  EXPECT_TRUE(LinkExists(sandbox_->bridge()));
  pid_t a = AddNetns("a"), b = AddNetns("b");
  ASSERT_FALSE(HasFailure()) << "could not create the test namespaces";
  auto att_a = net_->Attach("ctr-a", a, {});
  ASSERT_TRUE(att_a.ok()) << att_a.status().ToString();
  auto att_b = net_->Attach("ctr-b", b, {});
  ASSERT_TRUE(att_b.ok()) << att_b.status().ToString();

  auto subnet = ParseSubnet(sandbox_->subnet());
  ASSERT_TRUE(subnet.ok());
  EXPECT_NE(att_a->address, att_b->address);
  EXPECT_TRUE(subnet->Contains(*ParseIpv4(att_a->address)));
  EXPECT_EQ(att_a->gateway, FormatIpv4(subnet->Gateway()));
  EXPECT_EQ(att_a->prefix_length, 24);
  EXPECT_TRUE(LinkExists(att_a->host_veth));

  EXPECT_EQ(Ping("a", att_b->address), 0);
  EXPECT_EQ(Ping("b", att_a->address), 0);
  EXPECT_EQ(Ping("a", att_a->gateway), 0);
  EXPECT_EQ(Ping("a", "127.0.0.1"), 0) << "loopback is up inside";
  // The container side is eth0 with a default route via the bridge.
  EXPECT_EQ(Exec("a", {"ip", "link", "show", "eth0"}), 0);
  EXPECT_EQ(
      Exec("a", {"sh", "-c", "ip route | grep -q 'default via " + att_a->gateway + " dev eth0'"}),
      0);

  ASSERT_TRUE(net_->Detach("ctr-a").ok());
  EXPECT_FALSE(LinkExists(att_a->host_veth));
  EXPECT_NE(Exec("a", {"ip", "link", "show", "eth0"}), 0);
  EXPECT_NE(Ping("b", att_a->address, 1), 0);
  ASSERT_TRUE(net_->Detach("ctr-a").ok()) << "detach is idempotent";
  ASSERT_TRUE(net_->Detach("never-attached").ok());

  base::Status busy = net_->RemoveBridgeIfUnused();
  EXPECT_EQ(busy.code(), base::Code::kFailedPrecondition);
  EXPECT_THAT(std::string(busy.message()), HasSubstr("ctr-b"));
  ASSERT_TRUE(net_->Detach("ctr-b").ok());
  EXPECT_EQ(LeaseFiles(sandbox_->state_dir()), 0u);
  ASSERT_TRUE(net_->RemoveBridgeIfUnused().ok());
  EXPECT_FALSE(LinkExists(sandbox_->bridge()));
  EXPECT_EQ(CountRules(sandbox_->bridge()), 0);
}

TEST_F(BridgeTest, PublishedTcpAndUdpPortsAnswerOnLoopback) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  pid_t a = AddNetns("a");
  ASSERT_FALSE(HasFailure()) << "could not create the test namespaces";
  uint16_t tcp_port = testing::FreeLoopbackPort(true);
  uint16_t udp_port = testing::FreeLoopbackPort(false);
  ASSERT_NE(tcp_port, 0);
  ASSERT_NE(udp_port, 0);
  std::string token = "hello from " + sandbox_->bridge();
  ASSERT_TRUE(sandbox_->Serve("a", "tcp", 80, token + "/tcp").ok());
  ASSERT_TRUE(sandbox_->Serve("a", "udp", 53, token + "/udp").ok());
  auto att = net_->Attach("web", a, {{tcp_port, 80, "tcp"}, {udp_port, 53, "udp"}});
  ASSERT_TRUE(att.ok()) << att.status().ToString();
  EXPECT_EQ(CountRules(sandbox_->bridge(), "c:web"), 2);

  auto got = testing::Fetch("127.0.0.1", tcp_port, "tcp");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, token + "/tcp");
  auto got_udp = testing::Fetch("127.0.0.1", udp_port, "udp");
  ASSERT_TRUE(got_udp.ok()) << got_udp.status().ToString();
  EXPECT_EQ(*got_udp, token + "/udp");

  ASSERT_TRUE(net_->Detach("web").ok());
  EXPECT_EQ(CountRules(sandbox_->bridge(), "c:"), 0);
  EXPECT_EQ(LeaseFiles(sandbox_->state_dir()), 0u);
  EXPECT_FALSE(testing::Fetch("127.0.0.1", tcp_port, "tcp", 300).ok());
}

TEST_F(BridgeTest, OtherContainerReachesPublishedPortThroughGateway) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  pid_t a = AddNetns("a"), b = AddNetns("b");
  ASSERT_FALSE(HasFailure()) << "could not create the test namespaces";
  uint16_t port = testing::FreeLoopbackPort();
  ASSERT_TRUE(sandbox_->Serve("a", "tcp", 8080, "hairpin").ok());
  auto att_a = net_->Attach("srv", a, {{port, 8080, "tcp"}});
  ASSERT_TRUE(att_a.ok()) << att_a.status().ToString();
  auto att_b = net_->Attach("cli", b, {});
  ASSERT_TRUE(att_b.ok()) << att_b.status().ToString();
  std::string gateway = att_b->gateway;
  auto got = sandbox_->RunInNetns("b", [&] {
    auto r = testing::Fetch(gateway, port, "tcp");
    return r.ok() ? *r : r.status().ToString();
  });
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "hairpin");
  // The container reaches its own published port too, and the host reaches it on the
  // bridge address (a host address other than loopback).
  auto self = sandbox_->RunInNetns("a", [&] {
    auto r = testing::Fetch(gateway, port, "tcp");
    return r.ok() ? *r : r.status().ToString();
  });
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(*self, "hairpin");
  auto host = testing::Fetch(gateway, port, "tcp");
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  EXPECT_EQ(*host, "hairpin");
}

TEST_F(BridgeTest, RecoverReclaimsLeaseOfKilledProcess) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  pid_t a = AddNetns("a"), b = AddNetns("b");
  ASSERT_FALSE(HasFailure()) << "could not create the test namespaces";
  uint16_t port = testing::FreeLoopbackPort();
  auto att_a = net_->Attach("dies", a, {{port, 80, "tcp"}});
  ASSERT_TRUE(att_a.ok()) << att_a.status().ToString();
  auto att_b = net_->Attach("lives", b, {});
  ASSERT_TRUE(att_b.ok()) << att_b.status().ToString();

  ASSERT_TRUE(net_->Recover().ok());
  EXPECT_EQ(LeaseFiles(sandbox_->state_dir()), 4u) << "live owners keep their leases";

  sandbox_->Kill(a);
  // A second handle, as after an agent restart.
  auto reopened = BridgeNetwork::Open(sandbox_->Config());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  base::Status st = (*reopened)->Recover();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(LeaseFiles(sandbox_->state_dir()), 2u);
  EXPECT_FALSE(LinkExists(att_a->host_veth)) << "the named netns pins the veth; Recover removes it";
  EXPECT_TRUE(LinkExists(att_b->host_veth));
  EXPECT_EQ(CountRules(sandbox_->bridge(), "c:dies"), 0);
  EXPECT_EQ(CountRules(sandbox_->bridge(), "output"), 1) << "jumps not duplicated by reopen";
  EXPECT_EQ(Ping("b", att_b->gateway), 0);
}

TEST_F(BridgeTest, RecoverRemovesOrphanedAndHalfWrittenLeases) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  auto store = LeaseStore::Open(sandbox_->state_dir());
  ASSERT_TRUE(store.ok());
  auto self = ReadProcessIdentity(::getpid());
  ASSERT_TRUE(self.ok());
  auto subnet = *ParseSubnet(sandbox_->subnet());
  // Owner gone: the recorded start time no longer matches any live process.
  Lease dead{"dead", subnet.FirstHost(), "fjvdeadbeef", ::getpid(), {1, self->netns_inode}, {}};
  dead.ports = {{testing::FreeLoopbackPort(), 80, "tcp"}};
  ASSERT_TRUE(store->Write(dead).ok());
  // Crash between the lease file and its by-id link: the owner lives, the Attach never finished.
  Lease half{"half", subnet.FirstHost() + 1, "fjvhalf", ::getpid(), *self, {}};
  ASSERT_TRUE(store->Write(half).ok());
  std::filesystem::remove(sandbox_->state_dir() / "by-id" / "half");
  ASSERT_EQ(LeaseFiles(sandbox_->state_dir()), 3u);

  base::Status st = net_->Recover();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(LeaseFiles(sandbox_->state_dir()), 0u);
  EXPECT_EQ(CountRules(sandbox_->bridge(), "c:"), 0);
}

TEST_F(BridgeTest, ConcurrentAttachesFromSeveralProcessesGetDistinctAddresses) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  constexpr int kProcs = 4;
  std::vector<pid_t> targets;
  for (int i = 0; i < kProcs; ++i) targets.push_back(AddNetns("n" + std::to_string(i)));
  ASSERT_FALSE(HasFailure()) << "could not create the test namespaces";
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::vector<pid_t> workers;
  for (int i = 0; i < kProcs; ++i) {
    pid_t w = ::fork();
    ASSERT_GE(w, 0);
    if (w == 0) {
      // Each process opens its own handle, as separate `fjord run` invocations would.
      auto net = BridgeNetwork::Open(sandbox_->Config());
      if (!net.ok()) ::_exit(2);
      auto att = (*net)->Attach("c" + std::to_string(i), targets[i], {});
      if (!att.ok()) ::_exit(3);
      std::string line = att->address + "\n";
      if (::write(p[1], line.data(), line.size()) < 0) ::_exit(4);
      ::_exit(0);
    }
    workers.push_back(w);
  }
  ::close(p[1]);
  for (pid_t w : workers) {
    int status = 0;
    ASSERT_EQ(::waitpid(w, &status, 0), w);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker status " << status;
  }
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof(buf))) > 0;) out.append(buf, n);
  ::close(p[0]);
  std::set<std::string> addresses;
  for (const auto& a : base::Split(out, '\n')) {
    if (!a.empty()) addresses.insert(a);
  }
  EXPECT_EQ(addresses.size(), static_cast<size_t>(kProcs)) << out;
  for (int i = 0; i < kProcs; ++i) EXPECT_TRUE(net_->Detach("c" + std::to_string(i)).ok());
  EXPECT_EQ(LeaseFiles(sandbox_->state_dir()), 0u);
}

TEST_F(BridgeTest, OpenRepairsRulesRemovedBehindItsBack) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  RuleParams params{sandbox_->bridge(), *ParseSubnet(sandbox_->subnet()), false};
  auto saved = SaveTables();
  ASSERT_TRUE(saved.ok());
  EXPECT_TRUE(RulesInPlace(params, saved->nat, saved->filter)) << saved->nat << saved->filter;
  params.outbound = true;
  EXPECT_FALSE(RulesInPlace(params, saved->nat, saved->filter)) << "config change is noticed";
  params.outbound = false;

  // A firewall reload flushed our chain and dropped a jump.
  ASSERT_TRUE(Restore("*nat\n:" + SnatChain(sandbox_->bridge()) +
                      " - [0:0]\nCOMMIT\n*filter\n-D FORWARD -m comment --comment "
                      "\"fjord:" +
                      sandbox_->bridge() + ":forward\" -j " + ForwardChain(sandbox_->bridge()) +
                      "\nCOMMIT\n")
                  .ok());
  saved = SaveTables();
  ASSERT_TRUE(saved.ok());
  EXPECT_FALSE(RulesInPlace(params, saved->nat, saved->filter));
  auto reopened = BridgeNetwork::Open(sandbox_->Config());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  saved = SaveTables();
  ASSERT_TRUE(saved.ok());
  EXPECT_TRUE(RulesInPlace(params, saved->nat, saved->filter));
  EXPECT_EQ(CountRules(sandbox_->bridge(), "forward"), 1);
}

TEST_F(BridgeTest, DetachAfterTheContainerExited) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  auto child = sandbox_->SpawnInNewNetns();
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  auto att = net_->Attach("exits", *child, {{testing::FreeLoopbackPort(), 80, "tcp"}});
  ASSERT_TRUE(att.ok()) << att.status().ToString();
  sandbox_->Kill(*child);  // the namespace, and the veth with it, go away in the kernel
  base::Status st = net_->Detach("exits");
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(LinkExists(att->host_veth));
  EXPECT_EQ(LeaseFiles(sandbox_->state_dir()), 0u);
  EXPECT_EQ(CountRules(sandbox_->bridge(), "c:"), 0);
}

TEST_F(BridgeTest, RefusesASubnetAnotherInterfaceRoutes) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  Sandbox other;  // only for its unique name and state dir; it reuses our subnet
  BridgeConfig config = other.Config();
  config.subnet = sandbox_->subnet();
  auto clash = BridgeNetwork::Open(config);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), base::Code::kFailedPrecondition);
  EXPECT_THAT(clash.status().ToString(), HasSubstr("routed via " + sandbox_->bridge()));
  EXPECT_FALSE(LinkExists(other.bridge()));
}

TEST_F(BridgeTest, TinySubnetExhaustsWithClearError) {
  OpenNetwork(30);  // .1 gateway, .2 the only container address
  pid_t a = AddNetns("a"), b = AddNetns("b");
  ASSERT_FALSE(HasFailure()) << "could not create the test namespaces";
  auto first = net_->Attach("one", a, {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = net_->Attach("two", b, {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), base::Code::kResourceExhausted);
  EXPECT_THAT(second.status().ToString(), HasSubstr(sandbox_->subnet()));
  EXPECT_THAT(second.status().ToString(), HasSubstr("no free address"));
  EXPECT_NE(Exec("b", {"ip", "link", "show", "eth0"}), 0);
  ASSERT_TRUE(net_->Detach("one").ok());
  auto retry = net_->Attach("two", b, {});
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_EQ(retry->address, first->address) << "a released address is reused";
}

TEST_F(BridgeTest, FailedAttachLeavesNothingBehind) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  pid_t a = AddNetns("a");
  ASSERT_FALSE(HasFailure()) << "could not create the test namespaces";
  // The container already has an eth0, so creating the veth peer fails half-way.
  ASSERT_EQ(Exec("a", {"ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"}), 0);
  uint16_t port = testing::FreeLoopbackPort();
  auto att = net_->Attach("clash", a, {{port, 80, "tcp"}});
  ASSERT_FALSE(att.ok());
  EXPECT_THAT(att.status().ToString(), HasSubstr("clash"));
  EXPECT_THAT(att.status().ToString(), HasSubstr("already has an interface named eth0"));
  EXPECT_EQ(LeaseFiles(sandbox_->state_dir()), 0u);
  EXPECT_EQ(CountRules(sandbox_->bridge(), "c:"), 0);
  ASSERT_TRUE(net_->RemoveBridgeIfUnused().ok()) << "no veth or lease keeps the bridge busy";
}

TEST_F(BridgeTest, AttachClearsAStaleVethOfTheSameContainer) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  pid_t a = AddNetns("a"), b = AddNetns("b");
  ASSERT_FALSE(HasFailure()) << "could not create the test namespaces";
  auto first = net_->Attach("again", a, {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // A crash lost the lease but left the veth (its namespace still alive).
  auto store = LeaseStore::Open(sandbox_->state_dir());
  ASSERT_TRUE(store.ok());
  auto lease = store->Find("again");
  ASSERT_TRUE(lease.ok() && lease->has_value());
  ASSERT_TRUE(store->Remove(**lease).ok());
  ASSERT_TRUE(LinkExists(first->host_veth));

  auto second = net_->Attach("again", b, {});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->host_veth, first->host_veth);
  EXPECT_NE(Exec("a", {"ip", "link", "show", "eth0"}), 0) << "the stale pair is gone";
  EXPECT_EQ(Ping("b", second->gateway), 0);
}

TEST_F(BridgeTest, RejectsBusyHostPortDuplicateAttachAndBadInput) {
  ASSERT_NO_FATAL_FAILURE(OpenNetwork());
  pid_t a = AddNetns("a"), b = AddNetns("b");
  ASSERT_FALSE(HasFailure()) << "could not create the test namespaces";
  uint16_t port = testing::FreeLoopbackPort();
  auto att = net_->Attach("first", a, {{port, 80, "tcp"}});
  ASSERT_TRUE(att.ok()) << att.status().ToString();

  auto again = net_->Attach("first", b, {});
  EXPECT_EQ(again.status().code(), base::Code::kAlreadyExists);
  auto same_port = net_->Attach("second", b, {{port, 81, "tcp"}});
  EXPECT_EQ(same_port.status().code(), base::Code::kFailedPrecondition);
  EXPECT_THAT(same_port.status().ToString(), HasSubstr("published by container first"));

  // A host process listening on a port must not have its traffic stolen by DNAT.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t len = sizeof(sa);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&sa), &len);
  auto busy = net_->Attach("second", b, {{ntohs(sa.sin_port), 80, "tcp"}});
  ::close(listener);
  EXPECT_EQ(busy.status().code(), base::Code::kFailedPrecondition);
  EXPECT_THAT(busy.status().ToString(), HasSubstr("already in use"));

  EXPECT_EQ(net_->Attach("bad id!", b, {}).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(net_->Attach("x", b, {{0, 80, "tcp"}}).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(net_->Attach("x", b, {{1, 80, "sctp"}}).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(net_->Attach("x", ::getpid(), {}).status().code(), base::Code::kFailedPrecondition)
      << "the host namespace is refused";
  EXPECT_EQ(net_->Attach("x", 0, {}).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(LeaseFiles(sandbox_->state_dir()), 2u) << "only the first container's lease";
  EXPECT_EQ(CountRules(sandbox_->bridge(), "c:"), 1);
}

TEST(BridgeOpenTest, RejectsBadConfigWithoutTouchingTheHost) {
  struct Case {
    std::string bridge, subnet, expect;
  } cases[] = {
      {"fjbad0", "10.1.2.3/24", "did you mean 10.1.2.0/24"},
      {"fjbad0", "10.1.2.0", "no prefix length"},
      {"fjbad0", "10.1.2.0/31", "prefix length must be 8 to 30"},
      {"fjbad0", "banana/16", "dotted-quad"},
      {"fjbad0", "10.1.2.0/x", "not a number"},
      {"this-name-is-too-long", "10.1.2.0/24", "1 to 15 characters"},
      {"bad/name", "10.1.2.0/24", "may contain only"},
  };
  for (const auto& c : cases) {
    BridgeConfig config;
    config.bridge_name = c.bridge;
    config.subnet = c.subnet;
    config.state_dir = "/nonexistent/fjord-net-test";
    auto net = BridgeNetwork::Open(config);
    ASSERT_FALSE(net.ok()) << c.subnet;
    EXPECT_EQ(net.status().code(), base::Code::kInvalidArgument) << c.subnet;
    EXPECT_THAT(net.status().ToString(), HasSubstr(c.expect)) << c.subnet;
  }
  EXPECT_FALSE(std::filesystem::exists("/nonexistent/fjord-net-test"));
}

}  // namespace
}  // namespace fjord::net

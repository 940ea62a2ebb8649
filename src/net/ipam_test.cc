#include "net/ipam.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fjord::net {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(ParseSubnetTest, AcceptsCidrAndDerivesAddresses) {
  auto s = ParseSubnet("10.88.0.0/16");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(FormatIpv4(s->Gateway()), "10.88.0.1");
  EXPECT_EQ(FormatIpv4(s->FirstHost()), "10.88.0.2");
  EXPECT_EQ(FormatIpv4(s->LastHost()), "10.88.255.254");
  EXPECT_EQ(FormatIpv4(s->Broadcast()), "10.88.255.255");
  EXPECT_TRUE(s->Contains(*ParseIpv4("10.88.3.4")));
  EXPECT_FALSE(s->Contains(*ParseIpv4("10.89.0.1")));
  EXPECT_EQ(s->ToString(), "10.88.0.0/16");

  auto tiny = ParseSubnet("192.168.7.4/30");
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(FormatIpv4(tiny->FirstHost()), "192.168.7.6");
  EXPECT_EQ(tiny->LastHost(), tiny->FirstHost()) << "a /30 holds exactly one container";
}

TEST(ParseSubnetTest, RejectsBadInputWithFix) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"10.88.0.1/16", "has host bits set; did you mean 10.88.0.0/16?"},
      {"10.88.0.0", "no prefix length"},
      {"10.88.0.0/", "prefix length \"\" is not a number"},
      {"10.88.0.0/33", "is not a number from 0 to 32"},
      {"10.88.0.0/31", "prefix length must be 8 to 30"},
      {"10.0.0.0/7", "prefix length must be 8 to 30"},
      {"10.88.0/16", "dotted-quad"},
      {"10.88.0.256/24", "dotted-quad"},
      {"::1/64", "dotted-quad"},
      {"", "no prefix length"},
      {"10.88.0.0/16x", "not a number"},
  };
  for (const auto& c : cases) {
    auto s = ParseSubnet(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.status().code(), base::Code::kInvalidArgument) << c.text;
    EXPECT_THAT(s.status().ToString(), HasSubstr(c.expect)) << c.text;
  }
}

class LeaseStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fjord-ipam-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = LeaseStore::Open(dir_ / "state");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_.emplace(std::move(*store));
  }
  void TearDown() override { fs::remove_all(dir_); }

  Lease Make(const std::string& id, uint32_t address) {
    Lease l;
    l.container_id = id;
    l.address = address;
    l.host_veth = "fjv" + id;
    l.pid = 42;
    l.owner = {1234, 5678};
    l.ports = {{8080, 80, "tcp"}, {5353, 53, "udp"}};
    return l;
  }

  fs::path dir_;
  std::optional<LeaseStore> store_;
};

TEST_F(LeaseStoreTest, WriteFindListRemove) {
  Subnet subnet = *ParseSubnet("10.9.0.0/24");
  auto lock = store_->Lock();
  ASSERT_TRUE(lock.ok());
  auto a = store_->Allocate(subnet);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(FormatIpv4(*a), "10.9.0.2");
  Lease lease = Make("c1", *a);
  ASSERT_TRUE(store_->Write(lease).ok());

  auto found = store_->Find("c1");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(EncodeLease(**found), EncodeLease(lease)) << "round trip keeps every field";
  EXPECT_FALSE(store_->Find("other")->has_value());

  Lease clash = Make("c2", *a);
  EXPECT_EQ(store_->Write(clash).code(), base::Code::kAlreadyExists);
  EXPECT_FALSE(store_->Find("c2")->has_value());

  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].container_id, "c1");

  ASSERT_TRUE(store_->Remove(lease).ok());
  ASSERT_TRUE(store_->Remove(lease).ok()) << "removing twice is fine";
  EXPECT_FALSE(store_->Find("c1")->has_value());
  EXPECT_TRUE(store_->List()->empty());
}

TEST_F(LeaseStoreTest, AllocatesRoundRobinAndReportsExhaustion) {
  Subnet subnet = *ParseSubnet("10.9.0.0/29");  // hosts .2 to .6
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {
    auto a = store_->Allocate(subnet);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    got.push_back(FormatIpv4(*a));
    ASSERT_TRUE(store_->Write(Make("c" + std::to_string(i), *a)).ok());
  }
  EXPECT_THAT(got,
              ::testing::ElementsAre("10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"));
  auto full = store_->Allocate(subnet);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), base::Code::kResourceExhausted);
  EXPECT_THAT(full.status().ToString(), HasSubstr("10.9.0.0/29 has no free address: all 5"));

  // Freed addresses come back, oldest-released last: after .6 the search wraps to .3.
  ASSERT_TRUE(store_->Remove(Make("c1", *ParseIpv4("10.9.0.3"))).ok());
  ASSERT_TRUE(store_->Remove(Make("c3", *ParseIpv4("10.9.0.5"))).ok());
  EXPECT_EQ(FormatIpv4(*store_->Allocate(subnet)), "10.9.0.3");
}

TEST_F(LeaseStoreTest, CorruptLeaseNamesTheFile) {
  std::ofstream(dir_ / "state" / "leases" / "10.9.0.7") << "{not json";
  auto list = store_->List();
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(list.status().ToString(), HasSubstr("leases/10.9.0.7: corrupt lease"));
}

TEST(DecodeLeaseTest, RejectsFieldsThatWouldInjectIntoRulesOrPaths) {
  std::string good =
      R"({"container_id":"web","address":"10.9.0.2","host_veth":"fjv1","pid":1,)"
      R"("pid_start_time":2,"netns_inode":3,"ports":[{"host_port":80,"container_port":8,)"
      R"("protocol":"tcp"}]})";
  ASSERT_TRUE(DecodeLease(good, "f").ok()) << DecodeLease(good, "f").status().ToString();
  struct Case {
    std::string from, to, expect;
  } cases[] = {
      {R"("web")", R"("web\n-A OUTPUT -j ACCEPT")", "container id"},
      {R"("web")", R"("../../etc")", "container id"},
      {R"("fjv1")", R"("fjv1 -j DROP")", "host_veth"},
      {R"("tcp")", R"("tcp -j ACCEPT")", "protocol must be tcp or udp"},
      {R"("host_port":80)", R"("host_port":0)", "ports must be 1 to 65535"},
      {R"("host_port":80)", R"("host_port":70000)", "port 70000 is out of range"},
      {R"("pid":1)", R"("pid":-5)", "pid -5 is out of range"},
      {R"("10.9.0.2")", R"("10.9.0")", "dotted-quad"},
  };
  for (const auto& c : cases) {
    std::string bad = good;
    bad.replace(bad.find(c.from), c.from.size(), c.to);
    auto lease = DecodeLease(bad, "leases/x");
    ASSERT_FALSE(lease.ok()) << bad;
    EXPECT_THAT(lease.status().ToString(), HasSubstr(c.expect)) << bad;
    EXPECT_THAT(lease.status().ToString(), HasSubstr("leases/x")) << bad;
  }
}

TEST_F(LeaseStoreTest, DanglingLinksAreRemoved) {
  Lease lease = Make("gone", *ParseIpv4("10.9.0.9"));
  ASSERT_TRUE(store_->Write(lease).ok());
  fs::remove(dir_ / "state" / "leases" / "10.9.0.9");
  EXPECT_TRUE(fs::is_symlink(dir_ / "state" / "by-id" / "gone"));
  ASSERT_TRUE(store_->RemoveDanglingLinks().ok());
  EXPECT_FALSE(fs::is_symlink(dir_ / "state" / "by-id" / "gone"));
}

TEST(LeaseStoreOpenTest, EmptyStateDirIsAnError) {
  auto s = LeaseStore::Open("");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().ToString(), HasSubstr("BridgeConfig.state_dir"));
}

TEST(ProcessIdentityTest, ReadsOwnIdentityAndFailsForMissingPid) {
  auto self = ReadProcessIdentity(::getpid());
  ASSERT_TRUE(self.ok()) << self.status().ToString();
  EXPECT_GT(self->start_time, 0u);
  struct stat st {};
  ASSERT_EQ(::stat("/proc/self/ns/net", &st), 0);
  EXPECT_EQ(self->netns_inode, st.st_ino);
  EXPECT_FALSE(ReadProcessIdentity(0x3ffffff).ok());
}

}  // namespace
}  // namespace fjord::net

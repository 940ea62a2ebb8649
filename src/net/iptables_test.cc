#include "net/iptables.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fjord::net {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

RuleParams Params(bool outbound) { return {"fjt1", *ParseSubnet("10.201.3.0/24"), outbound}; }

Lease WebLease() {
  Lease l;
  l.container_id = "web";
  l.address = *ParseIpv4("10.201.3.2");
  l.ports = {{8080, 80, "tcp"}, {5353, 53, "udp"}};
  return l;
}

TEST(IptablesTest, DnatScriptRewritesTheChainFromLeases) {
  std::string script = DnatScript("fjt1", {WebLease()});
  EXPECT_EQ(script,
            "*nat\n"
            ":FJORD-DNAT-fjt1 - [0:0]\n"
            "-A FJORD-DNAT-fjt1 -p tcp -m tcp --dport 8080 -m comment --comment "
            "\"fjord:fjt1:c:web\" -j DNAT --to-destination 10.201.3.2:80\n"
            "-A FJORD-DNAT-fjt1 -p udp -m udp --dport 5353 -m comment --comment "
            "\"fjord:fjt1:c:web\" -j DNAT --to-destination 10.201.3.2:53\n"
            "COMMIT\n");
  EXPECT_EQ(DnatScript("fjt1", {}), "*nat\n:FJORD-DNAT-fjt1 - [0:0]\nCOMMIT\n");
}

TEST(IptablesTest, SyncScriptInsertsOnlyMissingJumps) {
  std::string fresh = SyncScript(Params(false), {}, "", "");
  EXPECT_THAT(fresh, HasSubstr("-I OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "
                               "\"fjord:fjt1:output\" -j FJORD-DNAT-fjt1\n"));
  EXPECT_THAT(fresh, HasSubstr("-I PREROUTING -m addrtype --dst-type LOCAL"));
  EXPECT_THAT(fresh, HasSubstr("-I POSTROUTING -m comment --comment \"fjord:fjt1:postrouting\""));
  EXPECT_THAT(fresh, HasSubstr("-I FORWARD -m comment --comment \"fjord:fjt1:forward\""));
  EXPECT_THAT(fresh, HasSubstr("-A FJORD-SNAT-fjt1 -s 127.0.0.0/8 -o fjt1"));
  EXPECT_THAT(fresh, HasSubstr("-A FJORD-FWD-fjt1 -i fjt1 -m comment --comment "
                               "\"fjord:fjt1:no-outbound\" -j DROP"));
  EXPECT_THAT(fresh, Not(HasSubstr("outbound\" -j MASQUERADE")));

  // As iptables-save prints them (another bridge's similar tag must not count).
  std::string nat =
      "*nat\n:PREROUTING ACCEPT [0:0]\n"
      "-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment \"fjord:fjt1:prerouting\" "
      "-j FJORD-DNAT-fjt1\n"
      "-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment \"fjord:fjt10:output\" "
      "-j FJORD-DNAT-fjt10\nCOMMIT\n";
  std::string with = SyncScript(Params(true), {WebLease()}, nat, "");
  EXPECT_THAT(with, Not(HasSubstr("-I PREROUTING")));
  EXPECT_THAT(with, HasSubstr("-I OUTPUT"));
  EXPECT_THAT(with, HasSubstr("--dport 8080"));
  EXPECT_THAT(with, HasSubstr("-s 10.201.3.0/24 ! -o fjt1 -m comment --comment "
                              "\"fjord:fjt1:outbound\" -j MASQUERADE"));
  EXPECT_THAT(with, HasSubstr("-A FJORD-FWD-fjt1 -i fjt1 -m comment"));
}

TEST(IptablesTest, RemoveScriptDeletesExactlyTheTaggedRules) {
  std::string nat =
      "*nat\n:PREROUTING ACCEPT [0:0]\n:FJORD-DNAT-fjt1 - [0:0]\n:FJORD-SNAT-fjt1 - [0:0]\n"
      ":FJORD-DNAT-fjt10 - [0:0]\n"
      "-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment \"fjord:fjt1:output\" "
      "-j FJORD-DNAT-fjt1\n"
      "-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment \"fjord:fjt1:output\" "
      "-j FJORD-DNAT-fjt1\n"
      "-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment \"fjord:fjt10:output\" "
      "-j FJORD-DNAT-fjt10\n"
      "-A OUTPUT -j DOCKER\nCOMMIT\n";
  std::string script = RemoveScript("fjt1", nat, "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n");
  EXPECT_EQ(script,
            "*nat\n"
            "-D OUTPUT -m addrtype --dst-type LOCAL -m comment --comment \"fjord:fjt1:output\" "
            "-j FJORD-DNAT-fjt1\n"
            "-D OUTPUT -m addrtype --dst-type LOCAL -m comment --comment \"fjord:fjt1:output\" "
            "-j FJORD-DNAT-fjt1\n"
            "-F FJORD-DNAT-fjt1\n-X FJORD-DNAT-fjt1\n-F FJORD-SNAT-fjt1\n-X FJORD-SNAT-fjt1\n"
            "COMMIT\n");
  EXPECT_EQ(RemoveScript("fjt1", "*nat\nCOMMIT\n", "*filter\nCOMMIT\n"), "");
}

TEST(RunCommandTest, PassesLargeInputAndCollectsOutput) {
  std::string input(300000, 'x');  // larger than a pipe buffer both ways
  auto r = RunCommand({"cat"}, input);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, input);

  auto fail = RunCommand({"sh", "-c", "echo oops >&2; exit 3"});
  ASSERT_TRUE(fail.ok());
  EXPECT_EQ(fail->exit_code, 3);
  EXPECT_EQ(fail->err, "oops\n");

  auto ignores_input = RunCommand({"true"}, input);
  ASSERT_TRUE(ignores_input.ok()) << "a child that ignores stdin must not break us";

  auto missing = RunCommand({"fjord-no-such-command"});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().ToString(), HasSubstr("fjord-no-such-command"));
}

}  // namespace
}  // namespace fjord::net

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "net/bridge.h"

namespace fjord::net {
namespace {

using ::testing::HasSubstr;

TEST(ParsePortMappingTest, AcceptsHostContainerAndProtocol) {
  struct Case {
    const char* text;
    uint16_t host, container;
    const char* protocol;
  } cases[] = {
      {"8080:80", 8080, 80, "tcp"},
      {"5353:53/udp", 5353, 53, "udp"},
      {"1:65535/tcp", 1, 65535, "tcp"},
  };
  for (const auto& c : cases) {
    auto p = ParsePortMapping(c.text);
    ASSERT_TRUE(p.ok()) << c.text << ": " << p.status().ToString();
    EXPECT_EQ(p->host_port, c.host) << c.text;
    EXPECT_EQ(p->container_port, c.container) << c.text;
    EXPECT_EQ(p->protocol, c.protocol) << c.text;
  }
}

TEST(ParsePortMappingTest, RejectsMalformedWithReason) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"8080", "must be HOST:CONTAINER"},
      {"", "must be HOST:CONTAINER"},
      {"0:80", "host port \"0\" must be a number from 1 to 65535"},
      {"8080:65536", "container port \"65536\""},
      {"8080:80/sctp", "protocol must be tcp or udp"},
      {"8080:80/", "protocol must be tcp or udp"},
      {"a:80", "host port \"a\""},
      {":80", "host port \"\""},
      {"80:-1", "container port \"-1\""},
      {"127.0.0.1:80:80", "host port \"127.0.0.1\""},
  };
  for (const auto& c : cases) {
    auto p = ParsePortMapping(c.text);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_EQ(p.status().code(), base::Code::kInvalidArgument);
    EXPECT_THAT(p.status().ToString(), HasSubstr(c.expect)) << c.text;
  }
}

}  // namespace
}  // namespace fjord::net

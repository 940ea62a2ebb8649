#include <gtest/gtest.h>

#include <csignal>

#include "unit/unit.h"

namespace fjord::unit {
namespace {

using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

std::string Dump(const std::vector<Diagnostic>& d) {
  std::string out;
  for (const auto& x : d) out += x.ToString() + "\n";
  return out;
}

Unit MustParse(const std::string& text, const char* name = "app@7.service") {
  auto r = ParseUnit(text, name, *UnitName::Parse(name));
  EXPECT_TRUE(r.unit.has_value()) << Dump(r.diagnostics);
  EXPECT_TRUE(r.diagnostics.empty()) << Dump(r.diagnostics);
  return r.unit ? *r.unit
                : *ParseUnit("[Service]\nExecStop=/x\n", name, *UnitName::Parse(name)).unit;
}

TEST(Accessors, Defaults) {
  Unit u = MustParse("[Service]\nExecStart=/bin/true\n");
  EXPECT_EQ(u.Type(), ServiceType::kSimple);
  EXPECT_EQ(u.Restart(), RestartPolicy::kNo);
  EXPECT_EQ(u.RestartSec(), 100ms);
  EXPECT_EQ(u.TimeoutStartSec(), 90s);
  EXPECT_EQ(u.TimeoutStopSec(), 90s);
  EXPECT_EQ(u.GetKillMode(), KillMode::kControlGroup);
  EXPECT_EQ(u.KillSignal(), SIGTERM);
  EXPECT_TRUE(u.Environment().empty());
  EXPECT_EQ(u.User(), "");
  auto res = u.Resources();
  EXPECT_FALSE(res.cpu_quota_percent || res.memory_max_bytes || res.tasks_max);
  EXPECT_FALSE(res.cpu_millicores());
  EXPECT_EQ(u.fjord().instances, 1u);
  EXPECT_FALSE(u.IsContainer());
}

TEST(Accessors, ServiceSettings) {
  Unit u = MustParse(R"([Unit]
Description=App %i
After=docker.service network.target
Before=x.service
Requires=docker.service
Wants=a.service
BindsTo=b.service
Conflicts=c.service
[Service]
Type=notify
Restart=on-failure
RestartSec=5s
TimeoutSec=10s
TimeoutStartSec=0
KillMode=mixed
KillSignal=SIGINT
User=app
WorkingDirectory=/srv/app
Environment="GREETING=hello world" PORT=80
Environment=PORT=81
EnvironmentFile=-/etc/default/app
EnvironmentFile=/etc/app.env
CPUQuota=50%
MemoryMax=512M
TasksMax=100
ExecStartPre=-/usr/bin/docker rm app-%i
ExecStart=/usr/bin/docker run --name app-%i -p ${PORT}:80 $GREETING img
)");
  EXPECT_EQ(u.Description(), "App %i");
  EXPECT_EQ(u.Type(), ServiceType::kNotify);
  EXPECT_EQ(u.Restart(), RestartPolicy::kOnFailure);
  EXPECT_EQ(u.RestartSec(), 5s);
  EXPECT_EQ(u.TimeoutStartSec(), kInfiniteTime);  // 0 disables the timeout
  EXPECT_EQ(u.TimeoutStopSec(), 10s);             // from TimeoutSec=
  EXPECT_EQ(u.GetKillMode(), KillMode::kMixed);
  EXPECT_EQ(u.KillSignal(), SIGINT);
  EXPECT_EQ(u.User(), "app");
  EXPECT_EQ(u.WorkingDirectory(), "/srv/app");
  std::vector<EnvVar> env = {{"GREETING", "hello world"}, {"PORT", "81"}};
  EXPECT_EQ(u.Environment(), env);
  auto files = u.EnvironmentFiles();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(files[0].optional);
  EXPECT_EQ(files[0].path, "/etc/default/app");
  EXPECT_FALSE(files[1].optional);
  auto res = u.Resources();
  EXPECT_DOUBLE_EQ(*res.cpu_quota_percent, 50.0);
  EXPECT_EQ(*res.cpu_millicores(), 500);
  EXPECT_EQ(*res.memory_max_bytes, 512ull << 20);
  EXPECT_EQ(*res.tasks_max, 100u);
  Dependencies d = u.Deps();
  EXPECT_EQ(d.after, (Strings{"docker.service", "network.target"}));
  EXPECT_EQ(d.before, Strings{"x.service"});
  EXPECT_EQ(d.requires_, Strings{"docker.service"});
  EXPECT_EQ(d.wants, Strings{"a.service"});
  EXPECT_EQ(d.binds_to, Strings{"b.service"});
  EXPECT_EQ(d.conflicts, Strings{"c.service"});

  SpecifierContext ctx{u.name(), "node1", "", ""};
  auto pre = u.Exec("ExecStartPre", ctx);
  ASSERT_TRUE(pre.ok()) << pre.status().ToString();
  ASSERT_EQ(pre->size(), 1u);
  EXPECT_TRUE((*pre)[0].ignore_failure);
  EXPECT_EQ((*pre)[0].argv, (Strings{"/usr/bin/docker", "rm", "app-7"}));
  auto start = u.Exec("ExecStart", ctx);
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(ExpandExecArgv((*start)[0].argv, u.Environment()),
            (Strings{"/usr/bin/docker", "run", "--name", "app-7", "-p", "81:80", "hello", "world",
                     "img"}));
}

TEST(Accessors, ResourceVariants) {
  struct Case {
    const char* lines;
    std::optional<uint64_t> mem;
    std::optional<double> mem_pct;
    std::optional<uint64_t> tasks;
    std::optional<double> tasks_pct;
    std::optional<int64_t> millicores;
  } cases[] = {
      {"CPUQuota=250%\nMemoryMax=infinity\nTasksMax=infinity\n",
       kInfiniteBytes,
       {},
       kInfiniteBytes,
       {},
       2500},
      {"MemoryMax=1.5G\nTasksMax=10%\nCPUQuota=12.5%\n", 3ull << 29, {}, {}, 10.0, 125},
      {"MemoryMax=20%\n", {}, 20.0, {}, {}, {}},
      {"MemoryMax=1G\nMemoryMax=\n", {}, {}, {}, {}, {}},  // reset
  };
  for (const auto& c : cases) {
    auto r = ParseUnit(std::string("[Service]\nExecStart=/bin/true\n") + c.lines, "a.service",
                       *UnitName::Parse("a.service"));
    ASSERT_TRUE(r.unit) << c.lines << Dump(r.diagnostics);
    auto res = r.unit->Resources();
    EXPECT_EQ(res.memory_max_bytes, c.mem) << c.lines;
    EXPECT_EQ(res.memory_max_percent, c.mem_pct) << c.lines;
    EXPECT_EQ(res.tasks_max, c.tasks) << c.lines;
    EXPECT_EQ(res.tasks_max_percent, c.tasks_pct) << c.lines;
    EXPECT_EQ(res.cpu_millicores(), c.millicores) << c.lines;
  }
  // MemoryLimit= (deprecated) still counts when MemoryMax= is absent.
  auto r = ParseUnit("[Service]\nExecStart=/bin/true\nMemoryLimit=64M\n", "a.service",
                     *UnitName::Parse("a.service"));
  ASSERT_TRUE(r.unit);
  EXPECT_EQ(*r.unit->Resources().memory_max_bytes, 64ull << 20);
}

TEST(Accessors, ContainerAndFjordSections) {
  Unit u = MustParse(R"([Container]
Image=docker.io/library/nginx:1.25
ContainerName=web-%i
Exec=nginx -g "daemon off;"
Entrypoint=/docker-entrypoint.sh
Environment=A=1 "B=two words"
PublishPort=8080:80
PublishPort=8443:443
Volume=/srv:/usr/share/nginx/html:ro
Network=host
WorkingDir=/srv
User=101
ReadOnly=true
[X-Fjord]
Disk=2G
Ports=80 8000-8010/tcp 53/udp
Instances=3
Constraint=rack GROUP_BY
Constraint=zone LIKE eu-.*
Constraint=hostname MAX_PER 2
Strategy=binpack
Affinity=db@*.service
AntiAffinity=web@*.service cache.service
)",
                     "web@1.service");
  EXPECT_TRUE(u.IsContainer());
  ContainerSpec c = u.Container();
  EXPECT_EQ(c.image, "docker.io/library/nginx:1.25");
  EXPECT_EQ(c.name, "web-%i");
  EXPECT_EQ(c.exec, (Strings{"nginx", "-g", "daemon off;"}));
  EXPECT_EQ(c.entrypoint, Strings{"/docker-entrypoint.sh"});
  EXPECT_EQ(c.environment, (std::vector<EnvVar>{{"A", "1"}, {"B", "two words"}}));
  EXPECT_EQ(c.publish_ports, (Strings{"8080:80", "8443:443"}));
  EXPECT_EQ(c.volumes, Strings{"/srv:/usr/share/nginx/html:ro"});
  EXPECT_EQ(c.network, "host");
  EXPECT_EQ(c.working_dir, "/srv");
  EXPECT_EQ(c.user, "101");
  EXPECT_TRUE(c.read_only);

  const FjordRequirements& f = u.fjord();
  EXPECT_EQ(*f.disk_bytes, 2ull << 30);
  EXPECT_EQ(*u.Resources().disk_bytes, 2ull << 30);
  std::vector<PortRange> ports = {{80, 80, "tcp"}, {8000, 8010, "tcp"}, {53, 53, "udp"}};
  EXPECT_EQ(f.ports, ports);
  EXPECT_EQ(f.instances, 3u);
  std::vector<Constraint> cons = {{"rack", Constraint::Op::kGroupBy, ""},
                                  {"zone", Constraint::Op::kLike, "eu-.*"},
                                  {"hostname", Constraint::Op::kMaxPer, "2"}};
  EXPECT_EQ(f.constraints, cons);
  EXPECT_EQ(f.strategy, FjordRequirements::Strategy::kBinpack);
  EXPECT_EQ(f.affinity, Strings{"db@*.service"});
  EXPECT_EQ(f.anti_affinity, (Strings{"web@*.service", "cache.service"}));
}

TEST(Accessors, FjordSectionErrors) {
  struct Case {
    const char* line;
    const char* says;
  } cases[] = {
      {"Instances=0", "from 1 to 10000"},
      {"Instances=many", "from 1 to 10000"},
      {"Ports=70000", "1-65535"},
      {"Ports=90-80", "1-65535"},
      {"Ports=80/sctp", "tcp or udp"},
      {"Constraint=rack", "field OPERATOR"},
      {"Constraint=rack NEAR x", "unknown constraint operator"},
      {"Constraint=zone LIKE", "needs a value"},
      {"Constraint=zone LIKE (", "regular expression"},
      {"Constraint=host UNIQUE x", "takes no value"},
      {"Constraint=host MAX_PER zero", "positive number"},
      {"Strategy=random", "not one of"},
      {"Disk=lots", "not a number"},
  };
  for (const auto& c : cases) {
    std::string text = std::string("[Service]\nExecStart=/bin/true\n[X-Fjord]\n") + c.line + "\n";
    auto r = ParseUnit(text, "a.service", *UnitName::Parse("a.service"));
    EXPECT_FALSE(r.unit.has_value()) << c.line;
    bool found = false;
    for (const auto& d : r.diagnostics) {
      found |= d.line == 4 && d.message.find(c.says) != std::string::npos;
    }
    EXPECT_TRUE(found) << c.line << "\n" << Dump(r.diagnostics);
  }
}

}  // namespace
}  // namespace fjord::unit

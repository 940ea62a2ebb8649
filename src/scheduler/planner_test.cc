#include <gtest/gtest.h>

#include "scheduler/scheduler.h"

namespace fjord::scheduler {
namespace {

TEST(ReschedulePlannerTest, TokenBucketLimitsEachBatch) {
  ReschedulePlanner p({/*per_second=*/10, /*burst=*/5}, /*now_ms=*/0);
  std::vector<DisplacedTask> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back({"t" + std::to_string(100 + i), 0, false, ""});
  p.Add(tasks);
  EXPECT_EQ(p.NextBatch(0).size(), 5u);  // the full burst
  EXPECT_EQ(p.NextBatch(0).size(), 0u);  // empty bucket
  EXPECT_EQ(p.MillisUntilNextToken(0), 100);
  EXPECT_EQ(p.NextBatch(99).size(), 0u);
  EXPECT_EQ(p.NextBatch(100).size(), 1u);    // 10/s: one token per 100 ms
  EXPECT_EQ(p.NextBatch(10000).size(), 5u);  // capped at the burst however long we waited
  EXPECT_EQ(p.queued(), 9u);
  // Time going backwards earns nothing.
  EXPECT_EQ(p.NextBatch(5000).size(), 0u);
}

TEST(ReschedulePlannerTest, SetLimitChangesTheRateFromNowOn) {
  ReschedulePlanner p({/*per_second=*/10, /*burst=*/5}, /*now_ms=*/0);
  std::vector<DisplacedTask> tasks;
  for (int i = 0; i < 100; ++i) tasks.push_back({"t" + std::to_string(100 + i), 0, false, ""});
  p.Add(tasks);
  EXPECT_EQ(p.NextBatch(0).size(), 5u);
  p.SetLimit({/*per_second=*/1000, /*burst=*/50}, /*now_ms=*/100);  // one token earned at 10/s
  EXPECT_EQ(p.NextBatch(100).size(), 1u);
  EXPECT_EQ(p.NextBatch(110).size(), 10u);   // 1000/s from 100 ms on
  EXPECT_EQ(p.NextBatch(1110).size(), 50u);  // the new burst caps it
  p.SetLimit({/*per_second=*/10, /*burst=*/2}, /*now_ms=*/2000);  // tokens clamp to the burst
  EXPECT_EQ(p.NextBatch(2000).size(), 2u);
  EXPECT_EQ(p.limit().per_second, 10);
}

TEST(ReschedulePlannerTest, PriorityThenNameAndGlobalsSkipped) {
  ReschedulePlanner p({1000, 100}, 0);
  p.Add({{"b.service", 0, false, ""},
         {"a.service", 0, false, ""},
         {"z.service", 5, false, ""},
         {"agent.service", 9, true, ""},
         {"c.service", 1, false, ""}});
  EXPECT_EQ(p.NextBatch(0),
            (std::vector<std::string>{"z.service", "c.service", "a.service", "b.service"}));
}

TEST(ReschedulePlannerTest, FollowersLeaveRightAfterTheirTarget) {
  ReschedulePlanner p({1000, 3}, 0);
  p.Add({{"a.service", 5, false, ""},
         {"b.service", 4, false, ""},
         {"side.service", 0, false, "b.service"},
         {"lone.service", 9, false, "gone.service"},  // target not queued: normal order
         {"c.service", 3, false, ""}});
  EXPECT_EQ(p.NextBatch(0), (std::vector<std::string>{"lone.service", "a.service", "b.service"}));
  EXPECT_EQ(p.NextBatch(1000), (std::vector<std::string>{"side.service", "c.service"}));
}

TEST(ReschedulePlannerTest, FailedTasksStayPendingWithReason) {
  ReschedulePlanner p({1000, 100}, 0);
  p.Add({{"a.service", 0, false, ""}, {"b.service", 3, false, ""}});
  auto batch = p.NextBatch(0);
  ASSERT_EQ(batch.size(), 2u);
  p.MarkPending("a.service", 0, "no machine fits: memory");
  EXPECT_EQ(p.queued(), 0u);
  ASSERT_EQ(p.pending().size(), 1u);
  EXPECT_EQ(p.pending().at("a.service").reason, "no machine fits: memory");
  EXPECT_TRUE(p.NextBatch(1000).empty());
  EXPECT_EQ(p.RetryPending(), 1u);
  EXPECT_TRUE(p.pending().empty());
  EXPECT_EQ(p.NextBatch(1000), (std::vector<std::string>{"a.service"}));
}

TEST(ReschedulePlannerTest, DegenerateLimitsStillProgress) {
  ReschedulePlanner p({0, 0}, 0);  // clamped to 1/s with a burst of 1
  p.Add({{"a", 0, false, ""}, {"b", 0, false, ""}});
  EXPECT_EQ(p.NextBatch(0).size(), 1u);
  EXPECT_EQ(p.MillisUntilNextToken(0), 1000);
  EXPECT_EQ(p.NextBatch(1000).size(), 1u);
}

}  // namespace
}  // namespace fjord::scheduler

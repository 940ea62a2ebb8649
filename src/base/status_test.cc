#include "base/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace fjord::base {
namespace {

TEST(StatusTest, OkIsCheapAndEmpty) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, WrapAddsContextOutermostFirst) {
  Status s = ErrnoStatus("mount overlay", ENOSPC).Wrap("start unit `web@1.service`");
  EXPECT_EQ(s.code(), Code::kResourceExhausted);
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_EQ(s.ToString(), "start unit `web@1.service`: mount overlay: No space left on device");
}

TEST(StatusTest, ErrnoMapsToCodes) {
  EXPECT_EQ(ErrnoStatus("x", ENOENT).code(), Code::kNotFound);
  EXPECT_EQ(ErrnoStatus("x", EEXIST).code(), Code::kAlreadyExists);
  EXPECT_EQ(ErrnoStatus("x", EPERM).code(), Code::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus("x", EIO).code(), Code::kIo);
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  FJORD_ASSIGN_OR_RETURN(int h, Half(x));
  FJORD_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(ResultTest, ValueOrError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().ToString(), "odd");
  EXPECT_EQ(r.value_or(-1), -1);
}

Status FailIfNegative(int x) {
  if (x < 0) return InvalidArgument("negative");
  return Status::Ok();
}

Status Chain(int x) {
  FJORD_RETURN_IF_ERROR(FailIfNegative(x));
  FJORD_RETURN_IF_ERROR(Half(x));
  return Status::Ok();
}

TEST(ResultTest, ReturnIfErrorAcceptsStatusAndResult) {
  EXPECT_TRUE(Chain(4).ok());
  EXPECT_EQ(Chain(-1).ToString(), "negative");
  EXPECT_EQ(Chain(3).ToString(), "odd");
}

}  // namespace
}  // namespace fjord::base

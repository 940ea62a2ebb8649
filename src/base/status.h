// Status and Result<T>: fjord's one error convention.
//
// Errors are values. A Status is OK (allocates nothing) or carries a code and a message that
// names what failed; each layer adds context with Wrap() so a user reads the whole path:
//   "start unit `web@1.service`: mount overlay: No space left on device".
// errno becomes a Status in exactly one place, ErrnoStatus(). No exceptions cross module
// boundaries. Status and Result are value types; not thread-safe to mutate concurrently.
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace fjord::base {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // the caller's input is wrong; the message says which field and why
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kPermissionDenied,
  kResourceExhausted,
  kUnavailable,
  kDeadlineExceeded,
  kAborted,
  kInternal,
  kIo,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  // The message without the code, e.g. "open /x: No such file or directory".
  std::string_view message() const { return rep_ ? std::string_view(rep_->message) : ""; }
  // errno this status came from, 0 if none.
  int sys_errno() const { return rep_ ? rep_->sys_errno : 0; }

  // Prepends context: Wrap("load unit a.service") -> "load unit a.service: <message>".
  Status Wrap(std::string_view context) const;

  std::string ToString() const;

  // Internal: used by ErrnoStatus.
  Status WithErrno(int err) &&;

 private:
  struct Rep {
    Code code;
    std::string message;
    int sys_errno = 0;
  };
  std::shared_ptr<const Rep> rep_;  // null means OK; shared so copies are cheap
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status FailedPrecondition(std::string message);
Status Internal(std::string message);
Status Unavailable(std::string message);

// Converts errno (or an explicit error number) into a Status: "<what>: <strerror>".
Status ErrnoStatus(std::string_view what, int err);
Status ErrnoStatus(std::string_view what);  // uses the current errno

// Result<T>: a T or a non-OK Status. A minimal std::expected for C++20.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result from an OK status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace fjord::base

// Early return of a non-OK Status (or a Result's status) from the enclosing function.
#define FJORD_RETURN_IF_ERROR(expr)                  \
  do {                                               \
    if (auto _fjord_st = (expr); !_fjord_st.ok()) {  \
      return ::fjord::base::StatusOf(_fjord_st);     \
    }                                                \
  } while (0)

// Declares `lhs` from a Result, or returns its error.
#define FJORD_CONCAT_INNER(a, b) a##b
#define FJORD_CONCAT(a, b) FJORD_CONCAT_INNER(a, b)
#define FJORD_ASSIGN_OR_RETURN(lhs, expr) \
  FJORD_ASSIGN_OR_RETURN_IMPL(FJORD_CONCAT(_fjord_res_, __LINE__), lhs, expr)
#define FJORD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

namespace fjord::base {
inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}
}  // namespace fjord::base

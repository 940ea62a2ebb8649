#include "base/status.h"

#include <cerrno>
#include <cstring>

namespace fjord::base {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kFailedPrecondition: return "failed precondition";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kResourceExhausted: return "resource exhausted";
    case Code::kUnavailable: return "unavailable";
    case Code::kDeadlineExceeded: return "deadline exceeded";
    case Code::kAborted: return "aborted";
    case Code::kInternal: return "internal";
    case Code::kIo: return "i/o error";
  }
  return "unknown";
}

Status::Status(Code code, std::string message) {
  if (code != Code::kOk) {
    rep_ = std::make_shared<const Rep>(Rep{code, std::move(message), 0});
  }
}

Status Status::Wrap(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += rep_->message;
  Status out(rep_->code, std::move(msg));
  return std::move(out).WithErrno(rep_->sys_errno);
}

Status Status::WithErrno(int err) && {
  if (rep_) rep_ = std::make_shared<const Rep>(Rep{rep_->code, rep_->message, err});
  return std::move(*this);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(message());
}

Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
Status FailedPrecondition(std::string m) {
  return Status(Code::kFailedPrecondition, std::move(m));
}
Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }

Status ErrnoStatus(std::string_view what, int err) {
  Code code = Code::kIo;
  switch (err) {
    case ENOENT: code = Code::kNotFound; break;
    case EEXIST: code = Code::kAlreadyExists; break;
    case EACCES:
    case EPERM: code = Code::kPermissionDenied; break;
    case EINVAL: code = Code::kInvalidArgument; break;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE: code = Code::kResourceExhausted; break;
    case ETIMEDOUT: code = Code::kDeadlineExceeded; break;
    default: break;
  }
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return Status(code, std::move(msg)).WithErrno(err);
}

Status ErrnoStatus(std::string_view what) { return ErrnoStatus(what, errno); }

}  // namespace fjord::base

// Feeds one input to the agent's sd_notify reader as a real datagram (a socketpair with
// SO_PASSCRED, as on a unit's notify socket) and checks what DrainNotify parsed: the sender's
// pid from the kernel's credentials, and fields that match ParseNotify of the same bytes, each
// with a non-empty key and no newline in key or value.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fjord::agent::DrainNotify;
  using fjord::agent::ParseNotify;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto direct = ParseNotify(text, 1);
  for (const auto& [k, v] : direct.fields) {
    if (k.empty() || k.find('\n') != std::string::npos || v.find('\n') != std::string::npos) {
      std::abort();
    }
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) return 0;
  int one = 1;
  ::setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  if (::send(sv[1], data, size, MSG_DONTWAIT) == static_cast<ssize_t>(size)) {
    auto got = DrainNotify(sv[0]);
    if (size > 4096) {
      if (!got.empty()) std::abort();  // too long for a notification: dropped
    } else if (got.size() != 1 || got[0].pid != ::getpid() || got[0].fields != direct.fields) {
      std::abort();
    }
  }
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}

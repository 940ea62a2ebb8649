#include "runtime/hardening.h"

#include <linux/capability.h>

namespace fjord::runtime {

uint64_t DefaultCapabilities() {
  uint64_t caps = 0;
  for (int c : {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
                CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
                CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE}) {
    caps |= 1ull << c;
  }
  return caps;
}

}  // namespace fjord::runtime

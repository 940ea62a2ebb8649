// Container hardening pieces (private): docker's default capability set and a default seccomp
// filter. The filter is compiled to BPF when fjord is built (seccomp_gen.cc), so a container's
// child only has to load it (prctl) right before execve.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"

namespace fjord::runtime {

// Bit mask of docker's default capabilities (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD,
// NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE).
uint64_t DefaultCapabilities();

// Denies (EPERM) module loading, kexec, reboot, keyrings, mount and friends, swap, bpf,
// perf_event_open, ptrace, open_by_handle_at, acct, clock setting, unshare/setns and namespace-
// creating clone flags; clone3 gets ENOSYS so libc falls back to clone.
// DefaultSeccompFilter is that program as compiled at build time (generated source);
// BuildDefaultSeccompFilter compiles it with libseccomp (seccomp_build.cc: the generator and
// tests only).
std::span<const sock_filter> DefaultSeccompFilter();
base::Result<std::vector<sock_filter>> BuildDefaultSeccompFilter();

}  // namespace fjord::runtime

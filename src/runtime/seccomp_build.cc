// The default seccomp filter, compiled with libseccomp. Only the build (seccomp_gen.cc, which
// bakes the program into fjord) and the tests link this: fjord itself never pays for
// libseccomp's start-up (about 0.5 ms per process, most of it probing the kernel).
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "base/fd.h"
#include "runtime/hardening.h"

namespace fjord::runtime {

using base::Result;

Result<std::vector<sock_filter>> BuildDefaultSeccompFilter() {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ALLOW),
                                                       seccomp_release);
  if (!ctx) return base::Internal("seccomp_init failed");
  static const char* const kDenied[] = {"kexec_load",
                                        "kexec_file_load",
                                        "reboot",
                                        "init_module",
                                        "finit_module",
                                        "delete_module",
                                        "keyctl",
                                        "add_key",
                                        "request_key",
                                        "mount",
                                        "umount2",
                                        "pivot_root",
                                        "swapon",
                                        "swapoff",
                                        "bpf",
                                        "perf_event_open",
                                        "ptrace",
                                        "open_by_handle_at",
                                        "name_to_handle_at",
                                        "acct",
                                        "settimeofday",
                                        "clock_settime",
                                        "clock_adjtime",
                                        "adjtimex",
                                        "unshare",
                                        "setns",
                                        "lookup_dcookie",
                                        "quotactl",
                                        "userfaultfd",
                                        "vhangup",
                                        "iopl",
                                        "ioperm",
                                        "syslog",
                                        "fsopen",
                                        "fsmount",
                                        "fsconfig",
                                        "fspick",
                                        "move_mount",
                                        "open_tree",
                                        "mount_setattr",
                                        "uselib",
                                        "process_vm_readv",
                                        "process_vm_writev",
                                        "kcmp",
                                        "create_module",
                                        "get_kernel_syms",
                                        "query_module",
                                        "nfsservctl"};
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0) return base::Internal(std::string("seccomp rule for ") + name + " failed");
  }
  // New namespaces through clone(2): one rule per flag (rules on one syscall are OR'ed).
  for (uint64_t flag : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                        CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME}) {
    if (seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)) < 0) {
      return base::Internal("seccomp rule for clone failed");
    }
  }
  int clone3 = seccomp_syscall_resolve_name("clone3");
  if (clone3 != __NR_SCMP_ERROR &&
      seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), clone3, 0) < 0) {
    return base::Internal("seccomp rule for clone3 failed");
  }
  // Export the compiled program through a memfd and read it back as sock_filter records.
  base::UniqueFd fd(memfd_create("fjord-seccomp", MFD_CLOEXEC));
  if (!fd) return base::ErrnoStatus("memfd_create for seccomp");
  if (int rc = seccomp_export_bpf(ctx.get(), fd.get()); rc < 0) {
    return base::ErrnoStatus("seccomp_export_bpf", -rc);
  }
  off_t size = lseek(fd.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) {
    return base::Internal("seccomp_export_bpf produced an odd-sized program");
  }
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(fd.get(), prog.data(), static_cast<size_t>(size), 0) != size) {
    return base::ErrnoStatus("read seccomp program");
  }
  return prog;
}

}  // namespace fjord::runtime

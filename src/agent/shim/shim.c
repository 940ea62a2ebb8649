// fjord-unit-shim: the tiny parent of one process of a unit (its main process or one control
// command such as ExecStartPre=). Built static with -Os, embedded into fjord and run from a
// memfd, so units outlive the agent: kill -9 of the agent leaves the shim and its child alone,
// and the exit status is written to a file that a later agent reads.
//
//   fjord-unit-shim STATUS_FILE LOG_FILE LOG_MAX_BYTES MODE PIDFILE|- CWD|- UID GID
//                   CGROUP_PROCS_FILES(':'-separated)|- OOM_SCORE_ADJ|- -- PATH ARGV0 ARGS...
//
// The environment of the shim is the command's environment. MODE is "simple" or "forking"
// OOM_SCORE_ADJ is written to the child's /proc/self/oom_score_adj; a refusal (no
// CAP_SYS_RESOURCE for a negative value) is ignored, as the unit must still run.
// (forking: the first child's exit only means the daemon is up; the main process is then read
// from PIDFILE, else it is the lowest pid left in the cgroup). The shim ignores SIGTERM & co.
// (the agent signals the unit's cgroup, which the shim is not part of), becomes a child
// subreaper so orphans of the unit are reaped, copies the child's stdout and stderr into
// LOG_FILE as "<RFC3339 UTC with microseconds> <text>\n" lines (rotated to LOG_FILE.1 before the
// file would pass LOG_MAX_BYTES) and writes STATUS_FILE atomically (tmp + rename):
//   pid=<main pid>\nstate=running|exited\n[code=<exit code>\nsignal=<N>\n][errno=E\nstage=S\n]
// After every change to STATUS_FILE it writes one byte to fd 3 when that fd is open (the
// agent's notification pipe; gone after the agent died, which is fine). Exit status of a
// failing setup step follows systemd: 200 chdir, 203 exec, 216 group, 217 user, 219 cgroup.
// Fd 5, when open, is the unit's sd_notify socket: the shim only holds it (close-on-exec, so
// the unit's process does not inherit it) to keep it alive for the next agent (notify.cc).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kBuf = 8192 };

extern char** environ;

static const char* g_status;
static const char* g_log;
static long long g_log_max;
static int g_log_fd = -1;
static char g_line[kBuf];
static size_t g_line_len;

static int WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void OpenLog(void) {
  g_log_fd = open(g_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

// Several shims of one unit append to the same file: reopen when another one rotated it.
static void MaybeRotate(size_t incoming) {
  struct stat fst, pst;
  if (g_log_fd < 0) OpenLog();
  if (g_log_fd < 0) return;
  if (stat(g_log, &pst) < 0 || fstat(g_log_fd, &fst) < 0 || pst.st_ino != fst.st_ino) {
    close(g_log_fd);
    OpenLog();
    if (g_log_fd < 0 || fstat(g_log_fd, &fst) < 0) return;
  }
  if (fst.st_size > 0 && fst.st_size + (long long)incoming > g_log_max) {
    char old[4096];
    snprintf(old, sizeof old, "%s.1", g_log);
    rename(g_log, old);
    close(g_log_fd);
    OpenLog();
  }
}

static void EmitLine(const char* text, size_t n) {
  char head[64];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int h = snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
  char out[kBuf + 80];
  memcpy(out, head, (size_t)h);
  memcpy(out + h, text, n);
  out[h + (int)n] = '\n';
  MaybeRotate((size_t)h + n + 1);
  if (g_log_fd >= 0) (void)WriteAll(g_log_fd, out, (size_t)h + n + 1);
}

static void Consume(const char* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n' || g_line_len == sizeof g_line) {
      EmitLine(g_line, g_line_len);
      g_line_len = 0;
      if (p[i] == '\n') continue;
    }
    g_line[g_line_len++] = p[i];
  }
}

// Reads what is there; returns 0 at EOF (or error), 1 when the pipe is still open.
static int Drain(int fd) {
  char buf[kBuf];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      Consume(buf, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 1;
    return 0;
  }
}

static void WriteStatus(const char* body) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", g_status);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    (void)WriteAll(fd, body, strlen(body));
    close(fd);
    rename(tmp, g_status);
  }
  char b = '!';
  (void)!write(3, &b, 1);
}

static void ChildFail(int errfd, int stage, int code) {
  int msg[2] = {stage, errno};
  (void)!write(errfd, msg, sizeof msg);
  _exit(code);
}

static void JoinCgroups(char* files, int errfd) {
  if (strcmp(files, "-") == 0) return;
  for (char* f = strtok(files, ":"); f != NULL; f = strtok(NULL, ":")) {
    int fd = open(f, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) ChildFail(errfd, 4, 219);
    close(fd);
  }
}

static pid_t ReadPidFile(const char* path) {
  char buf[32] = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  (void)!read(fd, buf, sizeof buf - 1);
  close(fd);
  return (pid_t)atoi(buf);
}

static pid_t LowestPidInCgroup(const char* files) {
  if (strcmp(files, "-") == 0) return 0;
  char first[8192];
  snprintf(first, sizeof first, "%s", files);
  char* colon = strchr(first, ':');
  if (colon) *colon = 0;
  FILE* f = fopen(first, "re");
  if (!f) return 0;
  pid_t best = 0;
  int p;
  while (fscanf(f, "%d", &p) == 1) {
    if (best == 0 || p < best) best = p;
  }
  fclose(f);
  return best;
}

static const char* kStages[] = {"exec", "chdir", "group", "user", "cgroup"};

int main(int argc, char** argv) {
  if (argc < 13 || strcmp(argv[11], "--") != 0) {
    fprintf(stderr, "fjord-unit-shim: internal tool of the fjord agent\n");
    return 2;
  }
  g_status = argv[1];
  g_log = argv[2];
  g_log_max = atoll(argv[3]);
  int forking = strcmp(argv[4], "forking") == 0;
  const char* pidfile = argv[5];
  const char* cwd = argv[6];
  long uid = atol(argv[7]), gid = atol(argv[8]);
  char* cgfiles = argv[9];
  char cgcopy[8192];
  snprintf(cgcopy, sizeof cgcopy, "%s", cgfiles);
  const char* oom_adj = argv[10];
  const char* path = argv[12];
  char** cargv = argv + 13;
  if (argc == 13) cargv = argv + 12;  // no argv given: argv0 = path

  fcntl(5, F_SETFD, FD_CLOEXEC);  // EBADF when no notify socket was passed: fine
  static const int kIgnored[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof kIgnored / sizeof kIgnored[0]; i++) signal(kIgnored[i], SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) return 1;
  pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    for (int s = 1; s < 32; s++) signal(s, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    close(3);
    JoinCgroups(cgfiles, err[1]);
    if (strcmp(oom_adj, "-") != 0) {
      int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        (void)!write(fd, oom_adj, strlen(oom_adj));
        close(fd);
      }
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    if (strcmp(cwd, "-") != 0 && chdir(cwd) < 0) ChildFail(err[1], 1, 200);
    if (gid >= 0) {
      if (setgroups(0, NULL) < 0 && errno != EPERM) ChildFail(err[1], 2, 216);
      if (setgid((gid_t)gid) < 0) ChildFail(err[1], 2, 216);
    }
    if (uid >= 0 && setuid((uid_t)uid) < 0) ChildFail(err[1], 3, 217);
    execve(path, cargv, environ);
    ChildFail(err[1], 0, 203);
  }
  close(out[1]);
  close(err[1]);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  int msg[2];
  char status[512];
  if (read(err[0], msg, sizeof msg) == (ssize_t)sizeof msg) {
    int code = msg[0] == 0 ? 203 : msg[0] == 1 ? 200 : msg[0] == 2 ? 216 : msg[0] == 3 ? 217 : 219;
    int st;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR) {
    }
    Drain(out[0]);
    snprintf(status, sizeof status, "pid=%d\nstate=exited\ncode=%d\nsignal=0\nerrno=%d\nstage=%s\n",
             (int)child, code, msg[1], kStages[msg[0] < 5 && msg[0] >= 0 ? msg[0] : 0]);
    WriteStatus(status);
    return 0;
  }
  close(err[0]);
  pid_t main_pid = child;
  int forking_wait = forking;  // still waiting for the forking parent to exit
  if (!forking) {
    snprintf(status, sizeof status, "pid=%d\nstate=running\n", (int)child);
    WriteStatus(status);
  }
  int pipe_open = 1;
  for (;;) {
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {pipe_open ? out[0] : -1, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return 1;
    if (pipe_open && (fds[1].revents & (POLLIN | POLLHUP))) pipe_open = Drain(out[0]);
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
    }
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
      if (p != main_pid) continue;
      if (forking_wait && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        forking_wait = 0;
        pid_t daemon = strcmp(pidfile, "-") != 0 ? ReadPidFile(pidfile) : 0;
        if (daemon <= 0) daemon = LowestPidInCgroup(cgcopy);
        if (daemon > 0 && kill(daemon, 0) == 0) {
          main_pid = daemon;
          snprintf(status, sizeof status, "pid=%d\nstate=running\n", (int)daemon);
          WriteStatus(status);
          continue;
        }
      }
      if (pipe_open) Drain(out[0]);
      if (g_line_len > 0) EmitLine(g_line, g_line_len);
      int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
      snprintf(status, sizeof status, "pid=%d\nstate=exited\ncode=%d\nsignal=%d\ncore=%d\n",
               (int)main_pid, code, sig, WIFSIGNALED(st) && WCOREDUMP(st) ? 1 : 0);
      WriteStatus(status);
      return 0;
    }
    // A forking daemon that is not our descendant (e.g. it was reparented elsewhere): poll it.
    if (!forking_wait && main_pid != child && kill(main_pid, 0) < 0 && errno == ESRCH) {
      snprintf(status, sizeof status, "pid=%d\nstate=exited\ncode=0\nsignal=0\n", (int)main_pid);
      WriteStatus(status);
      return 0;
    }
  }
}

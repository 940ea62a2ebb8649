// fjord-monitor: the tiny per-container process (like podman's conmon), and the container's init.
//
// Built static with -Os and embedded into the fjord binary; fjord runs it from a memfd with
// fexecve, so fjord stays one file and the monitor costs well under 1 MiB of RSS.
//
//   fjord-monitor monitor STATE_DIR CHILD_PID OUT_FD ERR_FD LOG_MAX_BYTES LOG_MAX_FILES
//                 OOM_FILE|- ATTACH_FD|- REMOVE_NAME|- HOLD_FD|- CGROUP_DIR...
//     Owns CHILD_PID (the container's init, already its child), copies the container's stdout
//     and stderr into STATE_DIR/container.log (CRI format, rotated; created at the first
//     output, so a silent container costs no log inode), and when the child
//     exits: reads the OOM counter, writes STATE_DIR/exit atomically, tells the attached
//     client, kills leftovers and removes the cgroups. Exits 0 after that; fjord watches its
//     pidfd.
//     ATTACH_FD, when given, is a pipe to a foreground `fjord run`: it gets the same records as
//     the log (blocking writes, so an attached client sees all output) until the client goes,
//     and last an exit record (SendExit), so the client need not wait for the cleanup.
//     REMOVE_NAME, when given, removes the container once it exited (`fjord run --rm`): after
//     the creator closed HOLD_FD (it is done writing STATE_DIR), the name link ROOT/names/NAME
//     is released and STATE_DIR moves to ROOT/trash before the client hears of the exit, and is
//     deleted after the cgroups (ROOT is STATE_DIR/../..; layout in runtime/paths.h).
//
//   fjord-monitor rmtree DIR
//     Deletes DIR in its own session. fjord starts it (fork, then exec at once) and does not
//     wait for it.
//
//   fjord-monitor init CHILD_PID
//     PID 1 inside the container: forwards signals to CHILD_PID (the workload), reaps every
//     zombie, and exits with the workload's status (128+N when it was killed by signal N).
//
// Log record format (one per line): "<RFC3339Nano UTC> <stdout|stderr> <F|P> <text>\n";
// F means the text ended with a newline in the stream, P that the line was split (longer than
// the line buffer, or the stream ended without a newline).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kLineMax = 16384 };

static void SleepMs(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

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

// ---- init mode ----

static void NoopHandler(int sig) { (void)sig; }

static int InitMain(pid_t child) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  // PID 1 only receives signals it has a handler for; install one for each forwardable signal.
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = NoopHandler;
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    sigaction(s, &sa, NULL);
  }
  int status = 0;
  for (;;) {
    // Reap first: the workload may have exited before this init started.
    for (;;) {
      int st;
      pid_t p = waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      if (p == child) {
        status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status;
      }
    }
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0 || sig == SIGCHLD) continue;
    if (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) continue;
    kill(child, sig);
  }
}

// ---- monitor mode ----

struct Log {
  char path[4096];
  int fd;
  int attach_fd;  // -1 when no client is attached
  long long size;
  long long max_bytes;
  int max_files;
};

static void LogOpen(struct Log* log) {
  log->fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  struct stat st;
  log->size = (log->fd >= 0 && fstat(log->fd, &st) == 0) ? st.st_size : 0;
}

// container.log -> container.log.1 -> ... -> container.log.(max_files-1); the oldest goes.
static void LogRotate(struct Log* log) {
  char from[4200], to[4200];
  for (int i = log->max_files - 1; i >= 1; i--) {
    if (i == 1) {
      snprintf(from, sizeof(from), "%s", log->path);
    } else {
      snprintf(from, sizeof(from), "%s.%d", log->path, i - 1);
    }
    snprintf(to, sizeof(to), "%s.%d", log->path, i);
    rename(from, to);
  }
  if (log->max_files <= 1) unlink(log->path);
  if (log->fd >= 0) close(log->fd);
  LogOpen(log);
}

struct Stream {
  int fd;
  const char* name;
  char buf[kLineMax];
  size_t len;
};

static size_t FormatStamp(char* out, size_t cap) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  return (size_t)snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                          tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

// Writes buffered records, rotating first when they would push the file past its bound.
static void LogWrite(struct Log* log, const char* p, size_t n) {
  if (n == 0) return;
  if (log->attach_fd >= 0 && WriteAll(log->attach_fd, p, n) < 0) {
    close(log->attach_fd);  // the client went away (EPIPE): keep logging to the file only
    log->attach_fd = -1;
  }
  if (log->fd < 0) LogOpen(log);
  if (log->size > 0 && log->size + (long long)n > log->max_bytes) LogRotate(log);
  if (log->fd >= 0) WriteAll(log->fd, p, n);
  log->size += (long long)n;
}

// Appends records for the complete lines in `s` (all of it when `flush`), batching writes.
static void EmitLines(struct Log* log, struct Stream* s, int flush) {
  static char out[kLineMax + 256];
  size_t n = 0;
  char stamp[64];
  FormatStamp(stamp, sizeof(stamp));
  size_t start = 0;
  while (start < s->len) {
    char* nl = memchr(s->buf + start, '\n', s->len - start);
    size_t line;
    char tag;
    if (nl != NULL) {
      line = (size_t)(nl - (s->buf + start));
      tag = 'F';
    } else if (flush || s->len == sizeof(s->buf)) {
      line = s->len - start;
      tag = 'P';
    } else {
      break;
    }
    size_t rec = strlen(stamp) + strlen(s->name) + 4 + line + 1;
    // Flush when the batch is full or when this record would cross the file's bound.
    if (n + rec > sizeof(out) || (n > 0 && log->size + (long long)(n + rec) > log->max_bytes)) {
      LogWrite(log, out, n);
      n = 0;
    }
    if (rec > sizeof(out)) rec = sizeof(out);
    n += (size_t)snprintf(out + n, sizeof(out) - n, "%s %s %c ", stamp, s->name, tag);
    memcpy(out + n, s->buf + start, line);
    n += line;
    out[n++] = '\n';
    start += line + (tag == 'F' ? 1 : 0);
  }
  LogWrite(log, out, n);
  memmove(s->buf, s->buf + start, s->len - start);
  s->len -= start;
}

// Returns 0 at EOF or error (the stream is closed then), 1 when data was read.
static int ReadStream(struct Log* log, struct Stream* s) {
  ssize_t r = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (r <= 0) {
    EmitLines(log, s, 1);
    close(s->fd);
    s->fd = -1;
    return 0;
  }
  s->len += (size_t)r;
  EmitLines(log, s, 0);
  return 1;
}

static long long ReadOomKills(const char* path) {
  if (strcmp(path, "-") == 0) return 0;
  FILE* f = fopen(path, "re");
  if (f == NULL) return 0;
  char line[256];
  long long n = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, "oom_kill ", 9) == 0) n = atoll(line + 9);
  }
  fclose(f);
  return n;
}

// Kills whatever is left in the cgroup (nothing, normally: the pid namespace died with its
// init) and removes it, retrying while the kernel finishes tearing processes down.
static void RemoveCgroup(const char* dir) {
  char procs[4200];
  snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
  for (int attempt = 0; attempt < 200; attempt++) {
    if (rmdir(dir) == 0 || errno == ENOENT) return;
    FILE* f = fopen(procs, "re");
    if (f != NULL) {
      int pid;
      while (fscanf(f, "%d", &pid) == 1) kill(pid, SIGKILL);
      fclose(f);
    }
    SleepMs(5);
  }
}

static int ExitCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
static int ExitSignal(int status) { return WIFSIGNALED(status) ? WTERMSIG(status) : 0; }

static void WriteExit(const char* state_dir, int status, long long oom_kills) {
  char tmp[4200], final_path[4200], body[512];
  snprintf(tmp, sizeof(tmp), "%s/exit.tmp", state_dir);
  snprintf(final_path, sizeof(final_path), "%s/exit", state_dir);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int len = snprintf(body, sizeof(body),
                     "exit_code=%d\nsignal=%d\noom_killed=%d\nfinished_unix_ns=%lld\n",
                     ExitCode(status), ExitSignal(status), oom_kills > 0 ? 1 : 0,
                     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  WriteAll(fd, body, (size_t)len);
  close(fd);
  rename(tmp, final_path);
}

// The attach stream's last record (runtime/log_reader.cc parses it), then EOF.
static void SendExit(struct Log* log, int status, long long oom_kills) {
  if (log->attach_fd < 0) return;
  char stamp[64], line[256];
  FormatStamp(stamp, sizeof(stamp));
  int len = snprintf(line, sizeof(line), "%s exit F exit_code=%d signal=%d oom_killed=%d\n", stamp,
                     ExitCode(status), ExitSignal(status), oom_kills > 0 ? 1 : 0);
  WriteAll(log->attach_fd, line, (size_t)len);
  close(log->attach_fd);
  log->attach_fd = -1;
}

static void WaitForEof(int fd) {
  char buf[64];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  close(fd);
}

static int RemoveEntry(const char* path, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

// `--rm`: releases the name (if it still names this container) and moves STATE_DIR to the
// trash, so no fjord command sees the container any more. Returns 0 when moved, with the new
// path in `trash`. The name is released under the flock on ROOT/names that fjord takes for
// every change there (runtime.cc, NamesLock).
static int Unpublish(const char* state_dir, const char* name, char* trash, size_t cap) {
  const char* slash = strrchr(state_dir, '/');
  if (slash == NULL || slash == state_dir) return -1;
  const char* id = slash + 1;
  const char* parent = slash - 1;  // ROOT/containers: ROOT ends before its last slash
  while (parent > state_dir && *parent != '/') parent--;
  if (*parent != '/') return -1;
  int root_len = (int)(parent - state_dir);
  char names[4200], link[4300], target[256];
  int n1 = snprintf(names, sizeof(names), "%.*s/names", root_len, state_dir);
  int n2 = snprintf(link, sizeof(link), "%s/%s", names, name);
  int n3 = snprintf(trash, cap, "%.*s/trash/%s.%d", root_len, state_dir, id, (int)getpid());
  if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n1 >= sizeof(names) || (size_t)n2 >= sizeof(link) ||
      (size_t)n3 >= cap) {
    return -1;  // a path this long is not ours: leave the container to fjord
  }
  int lock = open(names, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock >= 0) {
    while (flock(lock, LOCK_EX) < 0 && errno == EINTR) {
    }
  }
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  if (n > 0) {
    target[n] = '\0';
    if (strcmp(target, id) == 0) unlink(link);
  }
  if (lock >= 0) close(lock);
  return rename(state_dir, trash);
}

// Deletes a removed container's files in a child of its own, so the monitor (which fjord's
// stop and rm wait for) exits now, however large the container's writable layer is.
static void RemoveTreeDetached(const char* dir) {
  pid_t p = fork();
  if (p == 0) {
    nftw(dir, RemoveEntry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    _exit(0);
  }
  if (p < 0) nftw(dir, RemoveEntry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int MonitorMain(int argc, char** argv) {
  if (argc < 12) {
    fprintf(stderr,
            "fjord-monitor: usage: monitor DIR PID OUT ERR MAXB MAXF OOM ATTACH RM HOLD CG...\n");
    return 2;
  }
  const char* state_dir = argv[2];
  pid_t child = (pid_t)atoi(argv[3]);
  struct Stream streams[2];
  memset(streams, 0, sizeof(streams));
  streams[0].fd = atoi(argv[4]);
  streams[0].name = "stdout";
  streams[1].fd = atoi(argv[5]);
  streams[1].name = "stderr";
  struct Log log;
  snprintf(log.path, sizeof(log.path), "%s/container.log", state_dir);
  log.fd = -1;
  log.size = 0;
  log.max_bytes = atoll(argv[6]);
  log.max_files = atoi(argv[7]);
  if (log.max_bytes <= 0) log.max_bytes = 10LL << 20;
  if (log.max_files <= 0) log.max_files = 1;
  const char* oom_file = argv[8];
  log.attach_fd = strcmp(argv[9], "-") == 0 ? -1 : atoi(argv[9]);
  const char* remove_name = strcmp(argv[10], "-") == 0 ? NULL : argv[10];
  int hold_fd = strcmp(argv[11], "-") == 0 ? -1 : atoi(argv[11]);
  const int first_cgroup = 12;

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
  }

  int status = 0;
  int exited = 0;
  long long drain_deadline_ms = -1;
  for (;;) {
    if (!exited) {
      int st;
      pid_t p = waitpid(child, &st, WNOHANG);
      if (p == child || (p < 0 && errno == ECHILD)) {
        exited = 1;
        status = p == child ? st : (128 + SIGKILL) << 8;
        drain_deadline_ms = 1000;
      }
    }
    int open_streams = (streams[0].fd >= 0) + (streams[1].fd >= 0);
    if (exited && (open_streams == 0 || drain_deadline_ms <= 0)) break;
    struct pollfd pfds[3];
    int n = 0;
    for (int i = 0; i < 2; i++) {
      pfds[n].fd = streams[i].fd;  // negative fds are ignored by poll
      pfds[n].events = POLLIN;
      n++;
    }
    pfds[n].fd = exited ? -1 : sfd;
    pfds[n].events = POLLIN;
    n++;
    int timeout = exited ? 50 : -1;
    int r = poll(pfds, (nfds_t)n, timeout);
    if (r < 0 && errno != EINTR) break;
    if (exited) drain_deadline_ms -= 50;
    for (int i = 0; i < 2; i++) {
      if (streams[i].fd >= 0 && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        ReadStream(&log, &streams[i]);
      }
    }
    if (pfds[2].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
      }
    }
  }
  for (int i = 0; i < 2; i++) {
    if (streams[i].fd >= 0) EmitLines(&log, &streams[i], 1);
  }
  if (log.fd >= 0) close(log.fd);
  long long oom = ReadOomKills(oom_file);
  char trash[4200];
  int moved = -1;
  if (remove_name != NULL) {
    if (hold_fd >= 0) WaitForEof(hold_fd);
    moved = Unpublish(state_dir, remove_name, trash, sizeof(trash));
  }
  // Not moved (or not to be removed): an ordinary exited container, for `fjord ps` and Recover.
  if (moved != 0) WriteExit(state_dir, status, oom);
  SendExit(&log, status, oom);
  for (int i = first_cgroup; i < argc; i++) RemoveCgroup(argv[i]);
  if (moved == 0) RemoveTreeDetached(trash);
  return 0;
}

static int RmtreeMain(const char* dir) {
  setsid();  // outlives its caller: no signal from the caller's terminal
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    if (null_fd > 2) close(null_fd);
  }
  nftw(dir, RemoveEntry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "rmtree") == 0) return RmtreeMain(argv[2]);
  if (argc >= 3 && strcmp(argv[1], "init") == 0) return InitMain((pid_t)atoi(argv[2]));
  if (argc >= 2 && strcmp(argv[1], "monitor") == 0) return MonitorMain(argc, argv);
  fprintf(stderr, "fjord-monitor: internal helper of fjord; not meant to be run by hand\n");
  return 2;
}

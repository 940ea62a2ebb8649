// fjord-notify-helper: a tiny service for notify_test.cc that speaks sd_notify(3) without
// libsystemd. Runs its arguments in order:
//   send=TEXT      one datagram to $NOTIFY_SOCKET ("\n" in TEXT becomes a newline)
//   child=TEXT     a forked child sends TEXT (so the sender is not the main pid) and stays
//                  300 ms (so the agent still finds it in the unit's cgroup); waits for it
//   mainchild      forks a child that sleeps until killed and sends MAINPID=<its pid>
//   sleep=MS       sleeps
//   wait=PATH      waits until PATH exists
//   exit=N         exits with N
//   forever        sleeps until killed
// A failed send is reported on stderr (the unit's journal) and ends the helper with 3.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void SleepMs(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int Send(const char* text) {
  const char* addr = getenv("NOTIFY_SOCKET");
  if (addr == NULL || addr[0] == '\0') {
    fprintf(stderr, "notify-helper: NOTIFY_SOCKET is not set\n");
    return -1;
  }
  char msg[4096];
  size_t n = 0;
  for (const char* p = text; *p != '\0' && n + 1 < sizeof msg; p++) {
    if (p[0] == '\\' && p[1] == 'n') {
      msg[n++] = '\n';
      p++;
    } else {
      msg[n++] = *p;
    }
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t len = strlen(addr);
  if (len >= sizeof sa.sun_path) return -1;
  memcpy(sa.sun_path, addr, len);
  if (addr[0] == '@') sa.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  ssize_t w = sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr*)&sa,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
  close(fd);
  if (w < 0) {
    perror("notify-helper: sendto");
    return -1;
  }
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (strncmp(a, "send=", 5) == 0) {
      if (Send(a + 5) < 0) return 3;
    } else if (strncmp(a, "child=", 6) == 0) {
      pid_t c = fork();
      if (c == 0) {
        int rc = Send(a + 6) < 0 ? 3 : 0;
        SleepMs(300);
        _exit(rc);
      }
      int st;
      waitpid(c, &st, 0);
    } else if (strcmp(a, "mainchild") == 0) {
      pid_t c = fork();
      if (c == 0) {
        for (;;) pause();
      }
      char msg[64];
      snprintf(msg, sizeof msg, "MAINPID=%d", (int)c);
      if (Send(msg) < 0) return 3;
    } else if (strncmp(a, "sleep=", 6) == 0) {
      SleepMs(atol(a + 6));
    } else if (strncmp(a, "wait=", 5) == 0) {
      while (access(a + 5, F_OK) != 0) SleepMs(5);
    } else if (strncmp(a, "exit=", 5) == 0) {
      return atoi(a + 5);
    } else if (strcmp(a, "forever") == 0) {
      for (;;) pause();
    } else {
      fprintf(stderr, "notify-helper: unknown step %s\n", a);
      return 2;
    }
    printf("notify-helper: done %s\n", a);
  }
  return 0;
}

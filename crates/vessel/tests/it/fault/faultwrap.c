/*
 * faultwrap: runs a program and fails the Nth write, fsync, rename, mkdir or file
 * creation it (or any process it starts) makes on a path under one directory, with a
 * chosen errno. The fault-injection tests (fault_inject.rs) compile it with gcc at test
 * time; docs/fault-injection.md says how to use it by hand.
 *
 * Why seccomp user notification and not an LD_PRELOAD shim: the vessel binary is linked
 * statically (crt-static, see .cargo/config.toml), so there is no dynamic libc to
 * interpose, and rustix (linux_raw backend: the store's openat2, mkdirat, renameat)
 * makes raw syscalls that never enter libc anyway. A seccomp
 * filter sees every syscall whichever way it is made. The filter sends the calls of
 * interest to this supervisor (SECCOMP_RET_USER_NOTIF); the supervisor resolves the
 * path from /proc/PID (the fd's link, or the path argument read from the caller's
 * memory joined to its cwd or dirfd), counts only calls on paths under the chosen
 * directory, and answers each either "continue" (SECCOMP_USER_NOTIF_FLAG_CONTINUE: the
 * kernel runs the call as if nothing happened) or the injected errno. A plain
 * SECCOMP_RET_ERRNO filter cannot count, so it could not pick the Nth call.
 *
 * Why C and not a Rust example: it is a page of raw ioctls on structs that
 * <linux/seccomp.h> defines; gcc builds it in a fraction of a second at test time, and
 * the workspace build gains nothing. CONTINUE is unsafe as a security check (the caller
 * may change its memory after we read it), which does not matter for a test's faults.
 *
 * Environment:
 *   VESSEL_FAULT=KIND:N:ERRNO  fail the Nth call of KIND (write: write, pwrite64, writev,
 *                              pwritev, pwritev2; fsync: fsync, fdatasync, syncfs;
 *                              rename: rename, renameat, renameat2; mkdir: mkdir, mkdirat;
 *                              create: open, openat, openat2, creat with O_CREAT;
 *                              unlink: unlink, unlinkat, rmdir) with
 *                              ERRNO (EIO, ENOSPC, EDQUOT, EROFS, EACCES or a number).
 *                              Absent: count only.
 *   VESSEL_FAULT_DIR=DIR       only calls on paths under DIR count (required).
 *   VESSEL_FAULT_PATH=TEXT     and of those, only calls on paths containing TEXT.
 *   VESSEL_FAULT_REPORT=FILE   written when the program exits: one line per kind
 *                              ("write 12"), and "injected KIND N ERRNO SYSCALL PATH"
 *                              when the fault was injected.
 *
 * The exit status is the program's (128+signal when it was killed). Processes the
 * program leaves running (a detached pod) stay supervised by a background copy of this
 * program until the last of them is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

enum kind { K_WRITE, K_FSYNC, K_RENAME, K_MKDIR, K_CREATE, K_UNLINK, K_NONE };
static const char *kind_names[] = {"write", "fsync", "rename", "mkdir", "create", "unlink"};

static long counts[K_NONE];
static int fault_kind = K_NONE;
static long fault_nth;
static int fault_errno;
static char injected[PATH_MAX + 128];
static char dir[PATH_MAX];
static size_t dir_len;
static const char *report_path;
static const char *path_filter;

static void die(const char *what) {
  fprintf(stderr, "faultwrap: %s: %s\n", what, strerror(errno));
  exit(125);
}

static int parse_errno(const char *s) {
  static const struct { const char *n; int e; } names[] = {
      {"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EROFS", EROFS}, {"EACCES", EACCES}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(s, names[i].n)) return names[i].e;
  int e = atoi(s);
  if (e <= 0) {
    fprintf(stderr, "faultwrap: unknown errno %s\n", s);
    exit(125);
  }
  return e;
}

static void parse_fault(const char *spec) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", spec);
  char *n = strchr(buf, ':');
  char *e = n ? strchr(n + 1, ':') : NULL;
  if (!n || !e) {
    fprintf(stderr, "faultwrap: VESSEL_FAULT is KIND:N:ERRNO, not %s\n", spec);
    exit(125);
  }
  *n++ = 0;
  *e++ = 0;
  for (int k = 0; k < K_NONE; k++)
    if (!strcmp(buf, kind_names[k])) fault_kind = k;
  fault_nth = atol(n);
  if (fault_kind == K_NONE || fault_nth <= 0) {
    fprintf(stderr, "faultwrap: bad VESSEL_FAULT %s\n", spec);
    exit(125);
  }
  fault_errno = parse_errno(e);
}

/* The filter: the calls of interest go to the supervisor, all others run. open and
 * openat only with O_CREAT (checked here, cheaply); openat2's flags are in memory, so
 * each one goes to the supervisor. Other ABIs (x32, i386) are not watched. */
#define NR(n) offsetof(struct seccomp_data, nr)
#define NOTIFY BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF)
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define ARG_LO(i) offsetof(struct seccomp_data, args[i])

static int install_filter(void) {
  /* Calls that always go to the supervisor (openat2's flags are in memory). */
  static const int always[] = {__NR_write, __NR_pwrite64, __NR_writev, __NR_pwritev,
                               __NR_pwritev2, __NR_fsync, __NR_fdatasync, __NR_syncfs,
                               __NR_rename, __NR_renameat, __NR_renameat2, __NR_mkdir,
                               __NR_mkdirat, __NR_creat, __NR_openat2, __NR_unlink,
                               __NR_unlinkat, __NR_rmdir};
  enum { N = sizeof always / sizeof always[0] };
  struct sock_filter f[N + 16];
  int i = 0;
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  f[i++] = (struct sock_filter)ALLOW;
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR(0));
  /* Layout after the N jumps: [open?] [openat?] ALLOW NOTIFY LD1 JSET LD2 JSET NOTIFY ALLOW */
  int notify = i + N + 3;
  for (int k = 0; k < N; k++, i++)
    f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, always[k], notify - i - 1, 0);
  f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, notify + 1 - i - 1, 0), i++;
  f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, notify + 3 - i - 1, 0), i++;
  f[i++] = (struct sock_filter)ALLOW;
  f[i++] = (struct sock_filter)NOTIFY; /* == notify */
  /* open: flags in args[1] */
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_CREAT, 2, 3);
  /* openat: flags in args[2] */
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_CREAT, 0, 1);
  f[i++] = (struct sock_filter)NOTIFY;
  f[i++] = (struct sock_filter)ALLOW;
  struct sock_fprog prog = {.len = (unsigned short)i, .filter = f};
  return syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

static enum kind kind_of(long nr, const struct seccomp_data *d, pid_t pid);

static int read_mem(pid_t pid, unsigned long addr, void *buf, size_t len) {
  struct iovec local = {buf, len}, remote = {(void *)addr, len};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

/* A NUL-terminated string from the caller's memory, read page by page. */
static int read_string(pid_t pid, unsigned long addr, char *out, size_t cap) {
  size_t got = 0;
  while (got < cap - 1) {
    size_t room = 4096 - ((addr + got) & 4095);
    if (room > cap - 1 - got) room = cap - 1 - got;
    if (read_mem(pid, addr + got, out + got, room)) return -1;
    char *z = memchr(out + got, 0, room);
    if (z) return 0;
    got += room;
  }
  out[cap - 1] = 0;
  return 0;
}

static int read_link(pid_t pid, const char *what, char *out, size_t cap) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/%s", pid, what);
  ssize_t n = readlink(p, out, cap - 1);
  if (n < 0) return -1;
  out[n] = 0;
  return 0;
}

static int fd_path(pid_t pid, int fd, char *out, size_t cap) {
  char what[32];
  snprintf(what, sizeof what, "fd/%d", fd);
  return read_link(pid, what, out, cap);
}

/* The path a call names, absolute: the string joined to the cwd or to dirfd's path. */
static int path_at(pid_t pid, int dirfd, unsigned long addr, char *out, size_t cap) {
  char rel[PATH_MAX], base[PATH_MAX];
  if (read_string(pid, addr, rel, sizeof rel)) return -1;
  if (rel[0] == '/') {
    snprintf(out, cap, "%s", rel);
    return 0;
  }
  if (dirfd == AT_FDCWD ? read_link(pid, "cwd", base, sizeof base) : fd_path(pid, dirfd, base, sizeof base))
    return -1;
  size_t b = strlen(base), r = strlen(rel);
  if (b + 1 + r + 1 > cap) return -1;
  memcpy(out, base, b);
  out[b] = '/';
  memcpy(out + b + 1, rel, r + 1);
  return 0;
}

static int under_dir(const char *p) {
  return !strncmp(p, dir, dir_len) && (p[dir_len] == 0 || p[dir_len] == '/') &&
         (!path_filter || strstr(p, path_filter));
}

/* The path the call acts on, or -1 when it has none or it cannot be read. */
static int call_path(const struct seccomp_notif *n, char *out, size_t cap) {
  const __u64 *a = n->data.args;
  pid_t pid = n->pid;
  switch (n->data.nr) {
  case __NR_write: case __NR_pwrite64: case __NR_writev: case __NR_pwritev:
  case __NR_pwritev2: case __NR_fsync: case __NR_fdatasync: case __NR_syncfs:
    return fd_path(pid, (int)a[0], out, cap);
  case __NR_rename: case __NR_mkdir: case __NR_creat: case __NR_open: case __NR_unlink:
  case __NR_rmdir:
    return path_at(pid, AT_FDCWD, a[0], out, cap);
  case __NR_renameat: case __NR_renameat2: case __NR_mkdirat: case __NR_openat: case __NR_openat2:
  case __NR_unlinkat:
    return path_at(pid, (int)a[0], a[1], out, cap);
  }
  return -1;
}

static enum kind kind_of(long nr, const struct seccomp_data *d, pid_t pid) {
  switch (nr) {
  case __NR_write: case __NR_pwrite64: case __NR_writev: case __NR_pwritev: case __NR_pwritev2:
    return K_WRITE;
  case __NR_fsync: case __NR_fdatasync: case __NR_syncfs:
    return K_FSYNC;
  case __NR_rename: case __NR_renameat: case __NR_renameat2:
    return K_RENAME;
  case __NR_mkdir: case __NR_mkdirat:
    return K_MKDIR;
  case __NR_creat: case __NR_open: case __NR_openat:
    return K_CREATE;
  case __NR_unlink: case __NR_unlinkat: case __NR_rmdir:
    return K_UNLINK;
  case __NR_openat2: {
    struct open_how how;
    if (d->args[3] < sizeof how.flags || read_mem(pid, d->args[2], &how.flags, sizeof how.flags))
      return K_NONE;
    return (how.flags & O_CREAT) ? K_CREATE : K_NONE;
  }
  }
  return K_NONE;
}

static const char *nr_name(long nr) {
  switch (nr) {
  case __NR_write: return "write";
  case __NR_pwrite64: return "pwrite64";
  case __NR_writev: return "writev";
  case __NR_pwritev: return "pwritev";
  case __NR_pwritev2: return "pwritev2";
  case __NR_fsync: return "fsync";
  case __NR_fdatasync: return "fdatasync";
  case __NR_syncfs: return "syncfs";
  case __NR_rename: return "rename";
  case __NR_renameat: return "renameat";
  case __NR_renameat2: return "renameat2";
  case __NR_mkdir: return "mkdir";
  case __NR_mkdirat: return "mkdirat";
  case __NR_creat: return "creat";
  case __NR_open: return "open";
  case __NR_openat: return "openat";
  case __NR_openat2: return "openat2";
  case __NR_unlink: return "unlink";
  case __NR_unlinkat: return "unlinkat";
  case __NR_rmdir: return "rmdir";
  }
  return "?";
}

/* Answers one notification: continue, or the injected error. */
static void serve_one(int listener, struct seccomp_notif *req, struct seccomp_notif_resp *resp) {
  memset(req, 0, sizeof *req);
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) return; /* EINTR, ENOENT: caller gone */
  memset(resp, 0, sizeof *resp);
  resp->id = req->id;
  resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  enum kind k = kind_of(req->data.nr, &req->data, req->pid);
  char path[PATH_MAX];
  if (k != K_NONE && call_path(req, path, sizeof path) == 0 && under_dir(path)) {
    counts[k]++;
    if (k == (enum kind)fault_kind && counts[k] == fault_nth) {
      resp->flags = 0;
      resp->error = -fault_errno;
      snprintf(injected, sizeof injected, "injected %s %ld %d %s %s", kind_names[k], fault_nth,
               fault_errno, nr_name(req->data.nr), path);
    }
  }
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp); /* ENOENT: the caller was killed */
}

static void write_report(void) {
  if (!report_path) return;
  FILE *f = fopen(report_path, "w");
  if (!f) die(report_path);
  for (int k = 0; k < K_NONE; k++) fprintf(f, "%s %ld\n", kind_names[k], counts[k]);
  if (injected[0]) fprintf(f, "%s\n", injected);
  if (fclose(f)) die(report_path);
}

static int recv_fd(int sock) {
  char data;
  struct iovec iov = {&data, 1};
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
  if (recvmsg(sock, &m, 0) != 1) return -1;
  struct cmsghdr *h = CMSG_FIRSTHDR(&m);
  if (!h || h->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(h), sizeof fd);
  return fd;
}

/* In the child: only calls the filter lets through run between installing it and exec
 * (sendmsg, close, execve), so nothing waits on a supervisor not yet listening. */
static void send_fd(int sock, int fd) {
  char data = 'l';
  struct iovec iov = {&data, 1};
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c;
  memset(&c, 0, sizeof c);
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
  struct cmsghdr *h = CMSG_FIRSTHDR(&m);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  h->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(h), &fd, sizeof fd);
  if (sendmsg(sock, &m, 0) != 1) _exit(125);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: VESSEL_FAULT_DIR=DIR [VESSEL_FAULT=KIND:N:ERRNO] "
                    "[VESSEL_FAULT_REPORT=FILE] faultwrap PROGRAM [ARG...]\n");
    return 125;
  }
  const char *d = getenv("VESSEL_FAULT_DIR");
  if (!d || !realpath(d, dir)) {
    fprintf(stderr, "faultwrap: VESSEL_FAULT_DIR must name a directory\n");
    return 125;
  }
  dir_len = strlen(dir);
  const char *spec = getenv("VESSEL_FAULT");
  if (spec && *spec) parse_fault(spec);
  report_path = getenv("VESSEL_FAULT_REPORT");
  path_filter = getenv("VESSEL_FAULT_PATH");
  if (path_filter && !*path_filter) path_filter = NULL;

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) die("socketpair");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(sv[0]);
    unsetenv("VESSEL_FAULT");
    unsetenv("VESSEL_FAULT_DIR");
    unsetenv("VESSEL_FAULT_REPORT");
    unsetenv("VESSEL_FAULT_PATH");
    int listener = install_filter();
    if (listener < 0) {
      fprintf(stderr, "faultwrap: seccomp: %s\n", strerror(errno));
      _exit(125);
    }
    send_fd(sv[1], listener);
    close(listener);
    close(sv[1]);
    execvp(argv[1], argv + 1);
    _exit(127); /* no message: a write here would be counted */
  }
  close(sv[1]);
  int listener = recv_fd(sv[0]);
  if (listener < 0) {
    int st;
    waitpid(child, &st, 0);
    fprintf(stderr, "faultwrap: no seccomp listener from the child\n");
    return 125;
  }
  close(sv[0]);
  int pidfd = syscall(__NR_pidfd_open, child, 0);
  if (pidfd < 0) die("pidfd_open");

  struct seccomp_notif_sizes sizes;
  if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes)) die("seccomp sizes");
  struct seccomp_notif *req = calloc(1, sizes.seccomp_notif > sizeof *req ? sizes.seccomp_notif : sizeof *req);
  struct seccomp_notif_resp *resp =
      calloc(1, sizes.seccomp_notif_resp > sizeof *resp ? sizes.seccomp_notif_resp : sizeof *resp);
  if (!req || !resp) die("calloc");

  int status = 0;
  for (;;) {
    struct pollfd p[2] = {{listener, POLLIN, 0}, {pidfd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (p[0].revents & POLLIN) {
      serve_one(listener, req, resp);
      continue;
    }
    if (p[1].revents & POLLIN) {
      if (waitpid(child, &status, 0) < 0) die("waitpid");
      break;
    }
    if (p[0].revents & (POLLHUP | POLLERR)) {
      /* Every filtered process is gone, the child's exit not yet seen. */
      if (waitpid(child, &status, 0) < 0) die("waitpid");
      break;
    }
  }
  write_report();
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

  /* Processes the child left behind (a detached pod's supervisor) still need answers:
   * a copy in the background serves them, with no hold on our stdout or stderr. */
  struct pollfd p = {listener, POLLIN, 0};
  if (poll(&p, 1, 0) >= 0 && !(p.revents & (POLLHUP | POLLERR))) {
    if (fork() == 0) {
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      setsid();
      for (;;) {
        struct pollfd q = {listener, POLLIN, 0};
        if (poll(&q, 1, -1) < 0 && errno != EINTR) break;
        if (q.revents & POLLIN) serve_one(listener, req, resp);
        else if (q.revents & (POLLHUP | POLLERR)) break;
      }
      _exit(0);
    }
  }
  return code;
}

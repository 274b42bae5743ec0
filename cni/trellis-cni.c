// trellis-cni: the CNI plugin executable the container runtime runs for every verb of every pod.
//
// It only forwards: it checks what it can alone (environment, JSON, cniVersion), answers VERSION
// itself, and sends every other verb as {env, config, mode} over the agent's root-only unix socket
// (src/cni/wire.ts), printing the agent's answer unchanged. All logic lives in the TypeScript
// agent. It is C because a process that is started per verb must cost little: measured against
// the Bun-compiled TypeScript shim (cni/main.ts) in docs/cni-shim.md and by `make bench-cni`.
//
// It must never hang or crash: every read is bounded, every call is checked, the whole exchange
// with the agent has a deadline (`timeoutSeconds`, docs/cni-shim.md), and every failure is printed
// as the spec's error JSON. It runs no shell and reads no file but stdin. Behaviour mirrors
// cni/main.ts; the versions and the default socket come from src/cni/*.ts through the header
// hack/build-cni.sh generates.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cni-constants.h" // SUPPORTED_VERSIONS, LATEST_VERSION, DEFAULT_SOCKET

enum { MAX_INPUT = 4 << 20, MAX_ANSWER = 4 << 20, MAX_DEPTH = 512 };

// The plugin deadline: the config's `timeoutSeconds` when it is a whole number in 1..110, else 100;
// below kubelet's 2-minute runtime request timeout, so the runtime always gets a CNI answer.
enum { DEFAULT_TIMEOUT_SECONDS = 100, MAX_TIMEOUT_SECONDS = 110 };

// Spec error codes used here (src/cni/errors.ts).
enum {
  E_INCOMPATIBLE_VERSION = 1,
  E_INVALID_ENVIRONMENT = 4,
  E_IO_FAILURE = 5,
  E_DECODE_FAILURE = 6,
  E_INVALID_CONFIG = 7,
  E_TRY_AGAIN_LATER = 11,
  E_PLUGIN_NOT_AVAILABLE = 50,
};

// ---- output ---------------------------------------------------------------------------------

struct buf {
  char *p;
  size_t len, cap;
};

static void die_oom(void);

static void buf_put(struct buf *b, const char *s, size_t n) {
  if (n > SIZE_MAX / 2 - b->len) die_oom();
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) die_oom();
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

// Appends s as a JSON string literal (quotes included), escaped as JSON.stringify does.
static void buf_json(struct buf *b, const char *s, size_t n) {
  buf_put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    switch (c) {
    case '"': buf_put(b, "\\\"", 2); break;
    case '\\': buf_put(b, "\\\\", 2); break;
    case '\b': buf_put(b, "\\b", 2); break;
    case '\f': buf_put(b, "\\f", 2); break;
    case '\n': buf_put(b, "\\n", 2); break;
    case '\r': buf_put(b, "\\r", 2); break;
    case '\t': buf_put(b, "\\t", 2); break;
    default:
      if (c < 0x20) {
        snprintf(esc, sizeof esc, "\\u%04x", c);
        buf_put(b, esc, 6);
      } else {
        buf_put(b, (const char *)&s[i], 1);
      }
    }
  }
  buf_put(b, "\"", 1);
}

// Writes all of it, retrying short writes and EINTR. A runtime that closed our stdout gets
// nothing more; the exit code still tells it the outcome.
static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

// Prints text (adding the final newline the TS shim adds) and exits with code.
static _Noreturn void finish(int code, const char *text, size_t n) {
  if (n > 0) {
    write_all(1, text, n);
    if (text[n - 1] != '\n') write_all(1, "\n", 1);
  }
  exit(code);
}

// Prints the spec's error JSON {cniVersion, code, msg} and exits 1.
static _Noreturn void fail(int code, const char *version, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
  struct buf out = {0};
  char num[16];
  buf_str(&out, "{\"cniVersion\":");
  buf_json(&out, version, strlen(version));
  snprintf(num, sizeof num, "%d", code);
  buf_str(&out, ",\"code\":");
  buf_str(&out, num);
  buf_str(&out, ",\"msg\":");
  buf_json(&out, msg, (size_t)n);
  buf_str(&out, "}");
  finish(1, out.p, out.len);
}

static void die_oom(void) {
  static const char msg[] =
      "{\"cniVersion\":\"" LATEST_VERSION "\",\"code\":5,\"msg\":\"trellis-cni: out of memory\"}\n";
  write_all(1, msg, sizeof msg - 1);
  _exit(1);
}

// ---- JSON -----------------------------------------------------------------------------------
// A validating scanner (RFC 8259, as strict as JSON.parse) that also finds the few members the
// forwarder needs. The configuration itself is forwarded as the exact bytes read.

struct val {
  const char *start, *end; // the value's text; start == NULL: member absent
  char kind;               // 's' string, 'o' object, 'a' array, 'n' number, 'b' boolean, 'z' null
};

struct scan {
  const char *p, *end, *base;
  const char *err; // first error, with its byte offset in errAt
  size_t errAt;
};

static int scan_err(struct scan *s, const char *what) {
  if (!s->err) {
    s->err = what;
    s->errAt = (size_t)(s->p - s->base);
  }
  return -1;
}

static void skip_ws(struct scan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int scan_string(struct scan *s) {
  s->p++; // opening quote
  while (s->p < s->end) {
    unsigned char c = (unsigned char)*s->p;
    if (c == '"') {
      s->p++;
      return 0;
    }
    if (c < 0x20) return scan_err(s, "control character in a string");
    if (c == '\\') {
      if (++s->p >= s->end) break;
      char e = *s->p;
      if (e == 'u') {
        for (int i = 1; i <= 4; i++)
          if (s->p + i >= s->end || hexval(s->p[i]) < 0) return scan_err(s, "bad \\u escape");
        s->p += 4;
      } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
        return scan_err(s, "bad escape in a string");
      }
    }
    s->p++;
  }
  return scan_err(s, "unterminated string");
}

static int scan_number(struct scan *s) {
  const char *p = s->p;
  if (p < s->end && *p == '-') p++;
  if (p >= s->end) goto bad;
  if (*p == '0') p++;
  else if (*p >= '1' && *p <= '9')
    while (p < s->end && *p >= '0' && *p <= '9') p++;
  else goto bad;
  if (p < s->end && *p == '.') {
    if (++p >= s->end || *p < '0' || *p > '9') goto bad;
    while (p < s->end && *p >= '0' && *p <= '9') p++;
  }
  if (p < s->end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < s->end && (*p == '+' || *p == '-')) p++;
    if (p >= s->end || *p < '0' || *p > '9') goto bad;
    while (p < s->end && *p >= '0' && *p <= '9') p++;
  }
  s->p = p;
  return 0;
bad:
  s->p = p;
  return scan_err(s, "bad number");
}

static int scan_literal(struct scan *s, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return scan_err(s, "unexpected token");
  s->p += n;
  return 0;
}

static int scan_value(struct scan *s, int depth, struct val *v);

// Scans the members of an object (s->p at '{'); names[i] found -> out[i] (last one wins, as in
// JSON.parse). names may be NULL when nothing is wanted.
static int scan_object(struct scan *s, int depth, const char *const *names, struct val *out) {
  s->p++;
  skip_ws(s);
  if (s->p < s->end && *s->p == '}') {
    s->p++;
    return 0;
  }
  for (;;) {
    skip_ws(s);
    if (s->p >= s->end || *s->p != '"') return scan_err(s, "expected a member name");
    const char *key = s->p + 1;
    if (scan_string(s) < 0) return -1;
    size_t keylen = (size_t)(s->p - 1 - key);
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':') return scan_err(s, "expected ':'");
    s->p++;
    struct val v;
    if (scan_value(s, depth + 1, &v) < 0) return -1;
    // Member names with escapes never match: none of the names we look for needs one.
    for (int i = 0; names && names[i]; i++)
      if (strlen(names[i]) == keylen && memcmp(names[i], key, keylen) == 0) out[i] = v;
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
      s->p++;
      continue;
    }
    if (s->p < s->end && *s->p == '}') {
      s->p++;
      return 0;
    }
    return scan_err(s, "expected ',' or '}'");
  }
}

static int scan_array(struct scan *s, int depth) {
  s->p++;
  skip_ws(s);
  if (s->p < s->end && *s->p == ']') {
    s->p++;
    return 0;
  }
  for (;;) {
    struct val v;
    if (scan_value(s, depth + 1, &v) < 0) return -1;
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
      s->p++;
      continue;
    }
    if (s->p < s->end && *s->p == ']') {
      s->p++;
      return 0;
    }
    return scan_err(s, "expected ',' or ']'");
  }
}

static int scan_value(struct scan *s, int depth, struct val *v) {
  if (depth > MAX_DEPTH) return scan_err(s, "nested too deeply");
  skip_ws(s);
  if (s->p >= s->end) return scan_err(s, "unexpected end of input");
  v->start = s->p;
  int rc;
  switch (*s->p) {
  case '"': v->kind = 's'; rc = scan_string(s); break;
  case '{': v->kind = 'o'; rc = scan_object(s, depth, NULL, NULL); break;
  case '[': v->kind = 'a'; rc = scan_array(s, depth); break;
  case 't': v->kind = 'b'; rc = scan_literal(s, "true"); break;
  case 'f': v->kind = 'b'; rc = scan_literal(s, "false"); break;
  case 'n': v->kind = 'z'; rc = scan_literal(s, "null"); break;
  default: v->kind = 'n'; rc = scan_number(s);
  }
  v->end = s->p;
  return rc;
}

// Finds names[] among the members of an object value that already scanned clean.
static void members(const struct val *obj, const char *const *names, struct val *out) {
  struct scan s = {obj->start, obj->end, obj->start, NULL, 0};
  (void)scan_object(&s, 0, names, out);
}

// The decoded text of a string value, NUL-terminated, in malloc'd memory (never longer than the
// literal). \u escapes become UTF-8; a lone surrogate becomes U+FFFD like a JS string printed.
static char *decode(const struct val *v, size_t *len) {
  const char *p = v->start + 1, *end = v->end - 1;
  char *out = malloc((size_t)(end - p) + 1);
  if (!out) die_oom();
  size_t n = 0;
  while (p < end) {
    if (*p != '\\') {
      out[n++] = *p++;
      continue;
    }
    char e = p[1];
    p += 2;
    if (e != 'u') {
      static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
      out[n++] = to[strchr(from, e) - from];
      continue;
    }
    unsigned cp = (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
    p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
      unsigned lo = (unsigned)(hexval(p[2]) << 12 | hexval(p[3]) << 8 | hexval(p[4]) << 4 | hexval(p[5]));
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      }
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    if (cp < 0x80) {
      out[n++] = (char)cp;
    } else if (cp < 0x800) {
      out[n++] = (char)(0xC0 | cp >> 6);
      out[n++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out[n++] = (char)(0xE0 | cp >> 12);
      out[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
      out[n++] = (char)(0x80 | (cp & 0x3F));
    } else {
      out[n++] = (char)(0xF0 | cp >> 18);
      out[n++] = (char)(0x80 | (cp >> 12 & 0x3F));
      out[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
      out[n++] = (char)(0x80 | (cp & 0x3F));
    }
  }
  out[n] = '\0';
  if (len) *len = n;
  return out;
}

static int is_string(const struct val *v, const char *want) {
  if (!v->start || v->kind != 's') return 0;
  char *s = decode(v, NULL);
  int same = strcmp(s, want) == 0;
  free(s);
  return same;
}

// ---- input ----------------------------------------------------------------------------------

// Reads all of stdin, at most MAX_INPUT bytes. Answers -1 when there was more (too_big) or the
// read failed (the TS shim then treats the input as empty).
static int read_stdin(struct buf *in, int *too_big) {
  char chunk[16384];
  *too_big = 0;
  for (;;) {
    ssize_t r = read(0, chunk, sizeof chunk);
    if (r < 0) {
      if (errno == EINTR) continue;
      in->len = 0;
      return -1;
    }
    if (r == 0) return 0;
    if (in->len + (size_t)r > MAX_INPUT) {
      *too_big = 1;
      return -1;
    }
    buf_put(in, chunk, (size_t)r);
  }
}

// ---- the agent ------------------------------------------------------------------------------

static long long now_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *command;
static const char *socket_path;
static const char *version; // cniVersion for our own errors
static int deadline_s = DEFAULT_TIMEOUT_SECONDS;

// A socket failure: mirrors socketFailed() of cni/main.ts.
static _Noreturn void socket_failed(int err, int connected, const char *what) {
  if (!connected && strcmp(command, "DEL") == 0) {
    // The agent is gone (node draining, agent being replaced). DEL must still succeed or the
    // runtime retries forever and the pod never goes away: the veth dies with the netns, and the
    // agent's GC and orphan reconciliation release the IP when it is back.
    finish(0, "", 0);
  }
  int down = !connected && (err == ENOENT || err == ECONNREFUSED);
  int code = strcmp(command, "STATUS") == 0 ? E_PLUGIN_NOT_AVAILABLE
             : down                         ? E_TRY_AGAIN_LATER
                                            : E_IO_FAILURE;
  if (down)
    fail(code, version,
         "trellis agent at %s is not running (nothing listens on the socket); is the trellis agent "
         "running on this node?",
         socket_path);
  fail(code, version, "trellis agent at %s failed: %s: %s; is the trellis agent running on this node?",
       socket_path, what, strerror(err));
}

// The deadline passed: the runtime must hear from us before its own timeout fires. (An
// unconnected DEL, the agent's backlog full the whole time, succeeds like any DEL with no agent.)
static _Noreturn void deadline_passed(int connected) {
  if (!connected && strcmp(command, "DEL") == 0) finish(0, "", 0);
  fail(E_TRY_AGAIN_LATER, version, "trellis agent at %s did not answer %s within %d s", socket_path, command,
       deadline_s);
}

// Waits until fd is ready for events or the deadline passes.
static void wait_fd(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) deadline_passed(1);
    struct pollfd pfd = {fd, events, 0};
    int r = poll(&pfd, 1, (int)left);
    if (r > 0) return;
    if (r < 0 && errno != EINTR) socket_failed(errno, 1, "poll");
  }
}

static _Noreturn void forward(const struct buf *request) {
  long long deadline = now_ms() + (long long)deadline_s * 1000;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof addr.sun_path) socket_failed(ENAMETOOLONG, 0, "connect");
  memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) socket_failed(errno, 0, "socket");
  // A blocking connect to a unix socket waits only while the agent's backlog is full; bound that
  // wait by the deadline (the kernel answers EAGAIN when it passes).
  struct timeval tv = {deadline_s, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) socket_failed(errno, 0, "setsockopt");
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    if (errno == EINTR) continue;
    if (errno == EAGAIN) deadline_passed(0);
    socket_failed(errno, 0, "connect");
  }

  const char *p = request->p;
  size_t left = request->len;
  while (left > 0) {
    wait_fd(fd, POLLOUT, deadline);
    ssize_t w = send(fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      socket_failed(errno, 1, "send");
    }
    p += w;
    left -= (size_t)w;
  }
  if (shutdown(fd, SHUT_WR) != 0) socket_failed(errno, 1, "shutdown");

  // The agent answers and closes: read to the end, bounded in size and time.
  struct buf answer = {0};
  char chunk[16384];
  for (;;) {
    wait_fd(fd, POLLIN, deadline);
    ssize_t r = recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      socket_failed(errno, 1, "recv");
    }
    if (r == 0) break;
    if (answer.len + (size_t)r > MAX_ANSWER)
      fail(E_IO_FAILURE, version, "trellis agent at %s: answer larger than %d bytes", socket_path, MAX_ANSWER);
    buf_put(&answer, chunk, (size_t)r);
  }
  (void)close(fd); // the answer is read in full; a close error changes nothing

  // "0\n<stdout>" or "1\n<stdout>" (decodeAnswer in src/cni/wire.ts).
  const char *text = answer.p ? answer.p : "";
  const char *nl = memchr(text, '\n', answer.len);
  size_t head = nl ? (size_t)(nl - text) : answer.len;
  if (head != 1 || (text[0] != '0' && text[0] != '1')) {
    struct buf shown = {0};
    buf_json(&shown, text, answer.len < 80 ? answer.len : 80);
    fail(E_IO_FAILURE, version, "trellis agent at %s: malformed agent answer: %s", socket_path, shown.p);
  }
  finish(text[0] - '0', nl ? nl + 1 : "", nl ? answer.len - head - 1 : 0);
}

// ---- main -----------------------------------------------------------------------------------

static const char *const COMMANDS[] = {"ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION", NULL};
static const char *const ENV_KEYS[] = {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", NULL};

// Environment variables each verb needs (spec 1.1, "Parameters"): a bit per ENV_KEYS entry.
static unsigned required_env(const char *cmd) {
  if (!strcmp(cmd, "ADD") || !strcmp(cmd, "CHECK")) return 1 | 2 | 4;
  if (!strcmp(cmd, "DEL")) return 1 | 4;
  return 0;
}

int main(void) {
  // A runtime that closes a pipe early must get an exit code, not a SIGPIPE death.
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) fail(E_IO_FAILURE, LATEST_VERSION, "cannot ignore SIGPIPE");

  command = getenv("CNI_COMMAND");
  struct buf in = {0};
  int too_big = 0;
  (void)read_stdin(&in, &too_big);
  buf_put(&in, "", 0); // in.p is never NULL

  // Scan once: is it JSON, is it an object, and the members we need.
  enum { V_VERSION, V_TYPE, V_SOCKET, V_IPAM, V_TIMEOUT };
  static const char *const TOP[] = {"cniVersion", "type", "socket", "ipam", "timeoutSeconds", NULL};
  static const char *const IPAM[] = {"type", "socket", NULL};
  struct val top = {0}, m[5] = {{0}}, ipam[2] = {{0}};
  struct scan s = {in.p, in.p + in.len, in.p, NULL, 0};
  int valid = !too_big && scan_value(&s, 0, &top) == 0;
  if (valid) {
    skip_ws(&s);
    if (s.p != s.end) valid = scan_err(&s, "unexpected data after the JSON value") == 0;
  }
  int object = valid && top.kind == 'o';
  if (object) members(&top, TOP, m);
  if (object && m[V_IPAM].start && m[V_IPAM].kind == 'o') members(&m[V_IPAM], IPAM, ipam);

  // Our answers are in the configuration's cniVersion when we speak it, else in our latest.
  const struct val *cv = &m[V_VERSION];
  const char *asked = cv->start && cv->kind == 's' ? decode(cv, NULL) : NULL;
  int supported = 0;
  for (int i = 0; asked && SUPPORTED_VERSIONS[i]; i++) supported |= !strcmp(asked, SUPPORTED_VERSIONS[i]);
  version = supported ? asked : LATEST_VERSION;

  int known = 0;
  for (int i = 0; command && COMMANDS[i]; i++) known |= strcmp(command, COMMANDS[i]) == 0;
  if (!command || !*command) fail(E_INVALID_ENVIRONMENT, version, "CNI_COMMAND is not set");
  if (!known) {
    struct buf shown = {0};
    buf_json(&shown, command, strlen(command));
    fail(E_INVALID_ENVIRONMENT, version,
         "unknown CNI_COMMAND %s; expected one of ADD, DEL, CHECK, STATUS, GC, VERSION", shown.p);
  }

  if (!strcmp(command, "VERSION")) {
    // Answered locally so a runtime can probe the plugin even before the agent is up.
    struct buf out = {0};
    buf_str(&out, "{\"cniVersion\":");
    buf_json(&out, version, strlen(version));
    buf_str(&out, ",\"supportedVersions\":[");
    for (int i = 0; SUPPORTED_VERSIONS[i]; i++) {
      if (i) buf_str(&out, ",");
      buf_json(&out, SUPPORTED_VERSIONS[i], strlen(SUPPORTED_VERSIONS[i]));
    }
    buf_str(&out, "]}");
    finish(0, out.p, out.len);
  }

  if (too_big)
    fail(E_DECODE_FAILURE, LATEST_VERSION,
         "cannot decode the network configuration on stdin: larger than %d bytes", MAX_INPUT);
  if (!valid)
    fail(E_DECODE_FAILURE, LATEST_VERSION,
         "cannot decode the network configuration on stdin: %s at byte %zu", s.err, s.errAt);
  if (!object)
    fail(E_DECODE_FAILURE, LATEST_VERSION, "cannot decode the network configuration on stdin: not a JSON object");

  // assertSupportedVersion(): absent or empty is an invalid config, anything else unknown is code 1.
  if (!cv->start || (asked && !*asked))
    fail(E_INVALID_CONFIG, version, "network configuration has no cniVersion; set \"cniVersion\": \"1.0.0\"");
  if (!supported) {
    struct buf shown = {0}, list = {0};
    if (asked) buf_json(&shown, asked, strlen(asked));
    else buf_put(&shown, cv->start, (size_t)(cv->end - cv->start) < 200 ? (size_t)(cv->end - cv->start) : 200);
    for (int i = 0; SUPPORTED_VERSIONS[i]; i++) {
      if (i) buf_str(&list, ", ");
      buf_str(&list, SUPPORTED_VERSIONS[i]);
    }
    // The one error in the version asked for (test/e2e/cni.test.ts): it tells the runtime which.
    fail(E_INCOMPATIBLE_VERSION, asked && *asked ? asked : version, "incompatible CNI version %s: trellis supports %s",
         shown.p, list.p);
  }

  // timeoutSeconds: a whole number of seconds in 1..MAX (5 and 5.0 alike, as in JavaScript).
  const struct val *tv = &m[V_TIMEOUT];
  if (tv->start && tv->kind == 'n') {
    char num[64];
    size_t n = (size_t)(tv->end - tv->start);
    if (n < sizeof num) {
      memcpy(num, tv->start, n);
      num[n] = '\0';
      double t = strtod(num, NULL);
      if (t >= 1 && t <= MAX_TIMEOUT_SECONDS && t == (double)(int)t) deadline_s = (int)t;
    }
  }

  // The request: {"env": {...}, "config": <stdin as read>, "mode": "plugin" | "ipam", "timeoutMs"}.
  struct buf req = {0};
  buf_str(&req, "{\"env\":{\"CNI_COMMAND\":");
  buf_json(&req, command, strlen(command));
  struct buf missing = {0};
  unsigned need = required_env(command);
  for (int i = 0; ENV_KEYS[i]; i++) {
    const char *v = getenv(ENV_KEYS[i]);
    if ((need & 1u << i) && (!v || !*v)) {
      if (missing.len) buf_str(&missing, ", ");
      buf_str(&missing, ENV_KEYS[i]);
    }
    if (!v) continue;
    buf_str(&req, ",");
    buf_json(&req, ENV_KEYS[i], strlen(ENV_KEYS[i]));
    buf_str(&req, ":");
    buf_json(&req, v, strlen(v));
  }
  if (missing.len) fail(E_INVALID_ENVIRONMENT, version, "%s needs %s in the environment", command, missing.p);

  // Attachment IPAM: another plugin's config naming us as its IPAM ("ipam": {"type": "trellis"}).
  int ipam_mode = !is_string(&m[V_TYPE], "trellis") && is_string(&ipam[0], "trellis");
  const struct val *sock = NULL; // `??`: an absent or null member falls through
  if (ipam_mode && ipam[1].start && ipam[1].kind != 'z') sock = &ipam[1];
  else if (m[V_SOCKET].start && m[V_SOCKET].kind != 'z') sock = &m[V_SOCKET];
  socket_path = DEFAULT_SOCKET;
  if (sock && sock->kind != 's')
    fail(E_INVALID_CONFIG, version, "%s must be a string: the trellis agent's unix socket path",
         sock == &ipam[1] ? "ipam.socket" : "socket");
  if (sock) socket_path = decode(sock, NULL);

  buf_str(&req, "},\"config\":");
  buf_put(&req, in.p, in.len);
  buf_str(&req, ipam_mode ? ",\"mode\":\"ipam\"" : ",\"mode\":\"plugin\"");
  char timeout[48];
  snprintf(timeout, sizeof timeout, ",\"timeoutMs\":%d}", deadline_s * 1000);
  buf_str(&req, timeout);
  forward(&req);
}

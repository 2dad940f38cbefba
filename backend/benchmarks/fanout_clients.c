/* The fan-out benchmark's WebSocket clients, one load process's share (benchmarks/fanout.py):
 * the same reads and the same counting as fanout.py's `_Client`, without the interpreter.
 * On a machine where the clients share the server's cores, what the load generator spends
 * is CPU the server waits for; here a read costs little more than its system call.
 *
 *   FANOUT_TOKEN=... fanout_clients PORT CLIENTS ROUND_ID EXACT_EVERY
 *
 * (the API token in the environment, not on a command line that `ps` shows).
 * Prints "connected" once every socket got its hello, reads until a line comes on stdin,
 * then prints one JSON line: the two latency histograms (sparse [bucket, count] pairs),
 * each client's event count, the reads that brought events, the sockets closed, the events
 * reported dropped, and this process's CPU and CPU-queue seconds since "connected". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUCKET_MS 0.1
#define BUCKETS 100000
#define READ_SIZE (256 * 1024)
#define HEAD_MAX 65536
#define TAIL_MAX 256

typedef struct {
    int fd, ready, upgraded, closed, exact;
    long events, reads;
    size_t head_len, tail_len;
    char *head; /* the handshake's bytes until the hello frame is in */
    char tail[TAIL_MAX];
} client_t;

static long bound[BUCKETS], exact[BUCKETS];
static long dropped;
static char needle[128], prefix[192];
static size_t needle_len, prefix_len, keep;
static const char PING[] = "\x89\x04";
static const char DROPPED[] = "\"events_dropped\", \"count\": ";

static void fail(const char *what) {
    perror(what);
    exit(1);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int bucket(double seconds) {
    double b = seconds * 1000 / BUCKET_MS;
    if (b < 0) return 0;
    return b >= BUCKETS - 1 ? BUCKETS - 1 : (int)b;
}

static long digits(const char *s, int n) {
    long v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Epoch seconds of an ISO timestamp (UTC, as the server writes it), -1 if it is not one;
 * the whole seconds of its first 19 characters are cached, as fanout.py's `_Seconds`. */
static double stamp_seconds(const char *s, size_t n) {
    static char head[19];
    static double whole = -1;
    if (n < 19) return -1;
    if (whole < 0 || memcmp(head, s, 19) != 0) {
        struct tm tm = {0};
        long y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
        long h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
        if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || se < 0) return -1;
        tm.tm_year = (int)y - 1900, tm.tm_mon = (int)mo - 1, tm.tm_mday = (int)d;
        tm.tm_hour = (int)h, tm.tm_min = (int)mi, tm.tm_sec = (int)se;
        whole = (double)timegm(&tm);
        memcpy(head, s, 19);
    }
    double fraction = 0, scale = 0.1;
    if (n > 19 && s[19] == '.')
        for (size_t i = 20; i < n && i < 26 && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            fraction += (s[i] - '0') * scale;
    return whole + fraction;
}

static long count_of(const char *data, size_t len) {
    long count = 0;
    const char *at = data, *end = data + len;
    while ((at = memmem(at, end - at, needle, needle_len)) != NULL) {
        count++;
        at += needle_len;
    }
    return count;
}

/* The next event of this round from `*from` on: its stamp's seconds, and `*from` moved past
 * it; -1 when there is none, and -2 for one whose stamp the read cut (`*from` at its start:
 * the tail keeps it for the next read). */
static double next_stamp(const char *data, size_t len, size_t *from) {
    const char *end = data + len, *at = data + *from;
    while ((at = memmem(at, end - at, prefix, prefix_len)) != NULL) {
        const char *stamp = at + prefix_len;
        const char *quote = memchr(stamp, '"', end - stamp);
        if (quote == NULL) {
            *from = (size_t)(at - data);
            return -2;
        }
        *from = (size_t)(quote + 1 - data);
        double seconds = stamp_seconds(stamp, quote - stamp);
        if (seconds >= 0) return seconds;
        at = quote + 1;
    }
    return -1;
}

static void on_events(client_t *c, char *fresh, size_t fresh_len, double now) {
    static char data[TAIL_MAX + READ_SIZE];
    if (memmem(fresh, fresh_len, "events_dropped", 14) != NULL) {
        const char *at = fresh, *end = fresh + fresh_len;
        while ((at = memmem(at, end - at, DROPPED, sizeof DROPPED - 1)) != NULL) {
            long count = 0;
            for (at += sizeof DROPPED - 1; at < end && *at >= '0' && *at <= '9'; at++)
                count = count * 10 + (*at - '0');
            dropped += count;
        }
    }
    long counted = c->tail_len ? count_of(c->tail, c->tail_len) : 0;
    memcpy(data, c->tail, c->tail_len);
    memcpy(data + c->tail_len, fresh, fresh_len);
    size_t len = c->tail_len + fresh_len;
    if (memchr(data, PING[0], len) != NULL) { /* the server's keepalive wants a pong */
        const char *at = data, *end = data + len;
        while ((at = memmem(at, end - at, PING, 2)) != NULL && at + 6 <= end) {
            char pong[10] = {(char)0x8a, (char)0x84, 0, 0, 0, 0};
            memcpy(pong + 6, at + 2, 4);
            if (send(c->fd, pong, sizeof pong, MSG_NOSIGNAL) < 0 && errno != EAGAIN) c->closed = 1;
            at += 6;
        }
    }
    long count = count_of(data, len) - counted;
    size_t tail_from = len > keep ? len - keep : 0;
    if (c->exact) {
        size_t from = 0;
        double stamp;
        while ((stamp = next_stamp(data, len, &from)) >= 0) exact[bucket(now - stamp)]++;
        if (stamp == -2 ? len - from <= TAIL_MAX : from > tail_from) tail_from = from;
    }
    c->tail_len = len - tail_from;
    memcpy(c->tail, data + tail_from, c->tail_len);
    if (count) {
        c->events += count;
        c->reads++;
        size_t from = 0;
        double oldest = next_stamp(data, len, &from);
        if (oldest >= 0) bound[bucket(now - oldest)] += count;
    }
}

/* The handshake's answer and the hello frame, which may come in several reads. */
static void on_handshake(client_t *c, const char *fresh, size_t fresh_len, double now) {
    if (c->head_len + fresh_len > HEAD_MAX) {
        fprintf(stderr, "fanout_clients: no hello in %d bytes\n", HEAD_MAX);
        exit(1);
    }
    memcpy(c->head + c->head_len, fresh, fresh_len);
    c->head_len += fresh_len;
    if (!c->upgraded) {
        char *blank = memmem(c->head, c->head_len, "\r\n\r\n", 4);
        if (blank == NULL) return;
        if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) {
            fprintf(stderr, "fanout_clients: handshake refused: %.*s\n",
                    (int)(c->head_len < 80 ? c->head_len : 80), c->head);
            exit(1);
        }
        size_t rest = c->head_len - (size_t)(blank + 4 - c->head);
        memmove(c->head, blank + 4, rest);
        c->head_len = rest;
        c->upgraded = 1;
    }
    if (memmem(c->head, c->head_len, "\"hello\"", 7) == NULL) return;
    c->ready = 1;
    char *rest = c->head;
    size_t rest_len = c->head_len;
    c->head = NULL;
    on_events(c, rest, rest_len, now);
    free(rest);
}

static char buffer[READ_SIZE];

static void on_readable(client_t *c) {
    ssize_t got = read(c->fd, buffer, sizeof buffer);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (got <= 0) {
        if (!c->ready) {
            fprintf(stderr, "fanout_clients: closed before the handshake\n");
            exit(1);
        }
        c->closed = 1;
        close(c->fd);
        return;
    }
    double now = now_s();
    if (c->ready)
        on_events(c, buffer, (size_t)got, now);
    else
        on_handshake(c, buffer, (size_t)got, now);
}

static int poll_once(int epoll, client_t *clients, int timeout_ms, int *stdin_ready) {
    struct epoll_event events[256];
    int n = epoll_wait(epoll, events, 256, timeout_ms);
    if (n < 0 && errno != EINTR) fail("epoll_wait");
    for (int i = 0; i < n; i++) {
        if (events[i].data.u64 == (uint64_t)-1) {
            *stdin_ready = 1;
            continue;
        }
        client_t *c = &clients[events[i].data.u64];
        if (!c->closed) on_readable(c);
        if (c->closed) epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
    }
    return n;
}

static double cpu_s(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
           usage.ru_stime.tv_usec / 1e6;
}

/* How long this process has waited, runnable, for a CPU (Linux schedstat). */
static double queued_s(void) {
    unsigned long long running = 0, waiting = 0;
    FILE *f = fopen("/proc/self/schedstat", "r");
    if (f == NULL) return -1;
    int read_fields = fscanf(f, "%llu %llu", &running, &waiting);
    fclose(f);
    return read_fields == 2 ? waiting / 1e9 : -1;
}

static void print_histogram(const char *name, const long *histogram) {
    printf("\"%s\": [", name);
    int first = 1;
    for (int i = 0; i < BUCKETS; i++)
        if (histogram[i]) {
            printf("%s[%d, %ld]", first ? "" : ", ", i, histogram[i]);
            first = 0;
        }
    printf("], ");
}

int main(int argc, char **argv) {
    const char *token = getenv("FANOUT_TOKEN");
    if (argc != 5 || token == NULL) {
        fprintf(stderr, "usage: FANOUT_TOKEN=... fanout_clients PORT CLIENTS ROUND_ID EXACT_EVERY\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]), exact_every = atoi(argv[4]);
    const char *round_id = argv[3];
    if (n <= 0 || exact_every <= 0 || strlen(round_id) > 24 || strlen(token) > 200) {
        fprintf(stderr, "fanout_clients: CLIENTS and EXACT_EVERY > 0, a ROUND_ID of digits\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a socket the server reset is a client cut off, not our end */
    needle_len = (size_t)snprintf(needle, sizeof needle, "\"task_name\":\"bench.fanout.%s\"", round_id);
    prefix_len = (size_t)snprintf(prefix, sizeof prefix, "%s,\"status\":\"running\",\"timestamp\":\"", needle);
    keep = prefix_len - 1; /* a prefix cut by a read is found whole in the next one */
    char request[512];
    int request_len = snprintf(
        request, sizeof request,
        "GET /api/v1/ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        token, port);
    client_t *clients = calloc((size_t)n, sizeof *clients);
    int epoll = epoll_create1(0);
    if (clients == NULL || epoll < 0) fail("setup");
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    int stdin_ready = 0;
    for (int i = 0; i < n; i++) {
        client_t *c = &clients[i];
        c->exact = i % exact_every == 0;
        c->head = malloc(HEAD_MAX);
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->head == NULL || c->fd < 0) fail("socket");
        if (connect(c->fd, (struct sockaddr *)&address, sizeof address) < 0) fail("connect");
        if (write(c->fd, request, (size_t)request_len) != request_len) fail("handshake");
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event watch = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(epoll, EPOLL_CTL_ADD, c->fd, &watch) < 0) fail("epoll_ctl");
        if (i % 25 == 24 || i == n - 1) { /* a crowd arrives over a moment, not in one */
            double deadline = now_s() + 60;
            for (int j = 0; j <= i; j++)
                while (!clients[j].ready) {
                    if (now_s() > deadline) {
                        fprintf(stderr, "fanout_clients: no hello in 60 s\n");
                        return 1;
                    }
                    poll_once(epoll, clients, 1000, &stdin_ready);
                }
        }
    }
    printf("\"connected\"\n");
    fflush(stdout);
    double cpu_before = cpu_s(), queued_before = queued_s();
    struct epoll_event watch = {.events = EPOLLIN, .data.u64 = (uint64_t)-1};
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, 0, &watch) < 0) fail("epoll_ctl stdin");
    while (!stdin_ready) poll_once(epoll, clients, 1000, &stdin_ready);
    double cpu = cpu_s() - cpu_before, queued = queued_s() - queued_before;
    long reads = 0, closed = 0;
    printf("{");
    print_histogram("bound", bound);
    print_histogram("exact", exact);
    printf("\"events\": [");
    for (int i = 0; i < n; i++) {
        printf("%s%ld", i ? ", " : "", clients[i].events);
        reads += clients[i].reads;
        closed += clients[i].closed;
    }
    printf("], \"reads\": %ld, \"closed\": %ld, \"dropped\": %ld, \"cpu_s\": %.6f, "
           "\"queued_s\": %.6f}\n",
           reads, closed, dropped, cpu, queued);
    fflush(stdout);
    return 0;
}

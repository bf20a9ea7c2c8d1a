/*
 * statusload: N clients on kigend's status socket, each sending {"cmd":"status"} again as
 * soon as its answer line arrives, for a given time or until a file appears. Prints the
 * count and the p50/p99/max latency in milliseconds. One thread with epoll, so that the
 * figure is the daemon's latency and not the client's (a Python client adds milliseconds).
 *
 * Usage: statusload SOCKET CLIENTS SECONDS [STOP_FILE]
 *   SECONDS  the longest run; with STOP_FILE, the run also ends once that file exists
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REQUEST "{\"cmd\":\"status\"}\n"

struct client {
    int fd;
    double sent;
};

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int dial(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    double give_up = now_ms() + 10000;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        if (fd >= 0)
            close(fd);
        if (now_ms() > give_up)
            return -1;
        usleep(5000);
    }
}

int main(int argc, char **argv)
{
    static char buf[1 << 16];
    struct epoll_event ev, events[256];
    struct client *clients;
    double *lat, end;
    size_t n_lat = 0, cap = 1 << 23;
    int n, ep;

    if (argc < 4) {
        fprintf(stderr, "usage: statusload SOCKET CLIENTS SECONDS [STOP_FILE]\n");
        return 2;
    }
    n = atoi(argv[2]);
    end = now_ms() + atof(argv[3]) * 1000;
    clients = calloc((size_t)n, sizeof(*clients));
    lat = malloc(cap * sizeof(*lat));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!clients || !lat || ep < 0)
        return 1;
    for (int i = 0; i < n; i++) {
        clients[i].fd = dial(argv[1]);
        if (clients[i].fd < 0) {
            fprintf(stderr, "statusload: cannot connect to %s: %s\n", argv[1], strerror(errno));
            return 1;
        }
        ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &clients[i] };
        epoll_ctl(ep, EPOLL_CTL_ADD, clients[i].fd, &ev);
        clients[i].sent = now_ms();
        if (write(clients[i].fd, REQUEST, strlen(REQUEST)) < 0)
            return 1;
    }
    while (now_ms() < end && !(argc > 4 && access(argv[4], F_OK) == 0)) {
        int k = epoll_wait(ep, events, 256, 10);

        for (int i = 0; i < k; i++) {
            struct client *c = events[i].data.ptr;
            ssize_t got = read(c->fd, buf, sizeof(buf));
            double t = now_ms();

            if (got <= 0) {
                fprintf(stderr, "statusload: the daemon closed a connection\n");
                return 1;
            }
            /* Answers are small: one read holds a whole line (or the rest of one). */
            if (buf[got - 1] != '\n')
                continue;
            if (n_lat < cap)
                lat[n_lat++] = t - c->sent;
            c->sent = t;
            if (write(c->fd, REQUEST, strlen(REQUEST)) < 0)
                return 1;
        }
    }
    if (n_lat == 0) {
        fprintf(stderr, "statusload: no answer\n");
        return 1;
    }
    qsort(lat, n_lat, sizeof(*lat), cmp_double);
    printf("%zu %.3f %.3f %.3f\n", n_lat, lat[n_lat / 2], lat[(size_t)((double)n_lat * 0.99)],
           lat[n_lat - 1]);
    return 0;
}

/*
 * A durable delivery file (state_dir/deliveries/<sink>-<key>.json, deliveries.h) with any
 * content: kigen_deliveries_new() loads it at start. Contract: the queue is made (or
 * -ENOMEM), holds at most that one delivery, a pending delivery it took stays on disk, a file
 * it cannot use is set aside as .bad (never a crash), and closing and freeing the queue
 * leaves nothing behind (LeakSanitizer).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "deliveries.h"
#include "fuzz.h"
#include "log.h"

#define FILE_NAME "mail-00112233445566778899aabbccddeeff.json"

static char dir[] = "/tmp/kigen-fuzz-deliveries-XXXXXX";
static uv_loop_t loop;

static int attempt(void *data, struct kigen_delivery *d, const struct kigen_alert *alert,
                   const char *key, int64_t created_ms)
{
    (void)data, (void)d, (void)alert, (void)key, (void)created_ms;
    return -EIO; /* never reached: nothing is due before the loop runs */
}

static void abort_attempt(void *data, struct kigen_delivery *d)
{
    (void)data, (void)d;
}

static const struct kigen_deliveries_ops ops = { 1, attempt, abort_attempt };

static void closed_cb(void *data)
{
    *(bool *)data = true;
}

/* Removes every file of dir; returns how many there were and whether one ends in .bad. */
static size_t empty_dir(bool *ret_bad)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    FUZZ_CHECK(d != NULL);
    *ret_bad = false;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);

        if (e->d_name[0] == '.')
            continue;
        n++;
        *ret_bad |= len > 4 && strcmp(e->d_name + len - 4, ".bad") == 0;
        (void)unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    return n;
}

static void quiet(enum kigen_log_level level, const char *message, void *data)
{
    (void)level, (void)message, (void)data;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (!mkdtemp(dir) || uv_loop_init(&loop) < 0)
        abort();
    kigen_log_setup(quiet, NULL, KIGEN_LOG_DEBUG);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct kigen_deliveries_limits limits = { 60000, 3600000, 86400000, 10 };
    struct kigen_deliveries *q = NULL;
    char path[128];
    bool closed = false, is_bad;
    size_t n_files, pending = 0;
    int fd, r;

    snprintf(path, sizeof(path), "%s/" FILE_NAME, dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
    close(fd);
    r = kigen_deliveries_new(&loop, dir, "mail", &ops, NULL, &limits, &q);
    FUZZ_CHECK(r == 0 || r == -ENOMEM);
    if (r == 0) {
        pending = kigen_deliveries_pending(q);
        FUZZ_CHECK(pending <= 1);
        kigen_deliveries_close(q, closed_cb, &closed);
        while (!closed)
            uv_run(&loop, UV_RUN_ONCE);
        kigen_deliveries_free(q);
    }
    /*
     * A pending delivery it took stays as it is; a damaged file is set aside as .bad; only a
     * done file whose time has passed may go. Never two files, never a crash.
     */
    n_files = empty_dir(&is_bad);
    FUZZ_CHECK(n_files <= 1);
    FUZZ_CHECK(!pending || (n_files == 1 && !is_bad));
    return 0;
}

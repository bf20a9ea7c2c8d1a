/*
 * The replay driver: runs a fuzz target's LLVMFuzzerTestOneInput over every file named on
 * the command line, and every file of every directory named there (in name order, not
 * recursing), without libFuzzer. CTest runs it over tests/fuzz/regress/<target>/ and the
 * generated seeds, so that every build (gcc -Werror, clang with ASan and UBSan) replays the
 * inputs that once broke something. A path that does not exist is an error: a replay that
 * silently reads nothing proves nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Targets without setup do not define it. */
#pragma weak LLVMFuzzerInitialize

#define REPLAY_MAX_INPUT (16u << 20)

static int run_file(const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, got;
    int r = 0;

    if (!f) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    do {
        if (len == cap) {
            uint8_t *grown;

            cap = cap ? 2 * cap : 4096;
            if (cap > REPLAY_MAX_INPUT) {
                fprintf(stderr, "replay: '%s' is larger than %u bytes\n", path, REPLAY_MAX_INPUT);
                r = -1;
                goto out;
            }
            grown = realloc(buf, cap);
            if (!grown) {
                r = -1;
                goto out;
            }
            buf = grown;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    if (ferror(f)) {
        fprintf(stderr, "replay: cannot read '%s'\n", path);
        r = -1;
        goto out;
    }
    /* A copy of exactly len bytes, so that ASan sees a read past the input. */
    {
        uint8_t *exact = malloc(len ? len : 1);

        if (!exact) {
            r = -1;
            goto out;
        }
        if (len)
            memcpy(exact, buf, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    (*count)++;
out:
    free(buf);
    fclose(f);
    return r;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL, *path;
    size_t n = 0, cap = 0;
    int r = 0;

    if (!d) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue; /* ., .., and hidden files (libFuzzer's .state, editors' files) */
        if (n == cap) {
            char **grown;

            cap = cap ? 2 * cap : 64;
            grown = realloc(names, cap * sizeof(*names));
            if (!grown) {
                r = -1;
                goto out;
            }
            names = grown;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            r = -1;
            goto out;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n && r == 0; i++) {
        struct stat st;

        if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
            r = -1;
            break;
        }
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            r = run_file(path, count);
        free(path);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return r;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    struct stat st;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        int r;

        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "replay: '%s': %s\n", argv[i], strerror(errno));
            return 1;
        }
        r = S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) : run_file(argv[i], &count);
        if (r < 0)
            return 1;
    }
    printf("replayed %zu inputs\n", count);
    return count > 0 ? 0 : 1;
}

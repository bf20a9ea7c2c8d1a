/*
 * The status socket (SPEC §9): kigen_proto_answer() on one request line, against a small
 * daemon's world (fuzz_world) whose engine has sent alerts, so that show has a history. The
 * rescan and reload actions do nothing (reload reports a failure, to reach that path); odd
 * lengths ask as a privileged peer, even ones as an unprivileged one. Every answer must be a
 * JSON object on one line, of the length returned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine.h"
#include "fuzz.h"
#include "proto.h"

static struct kigen_engine engine;
static struct kigen_proto_ctx ctx;

static int rescan_cb(void *data, char *errbuf, size_t errlen)
{
    return 0;
}

static int reload_cb(void *data, char *errbuf, size_t errlen)
{
    snprintf(errbuf, errlen, "kigen.yaml:3:1: unknown key \"bogus\"\n\x01");
    return -EINVAL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const struct fuzz_world *w = fuzz_world();

    kigen_engine_init(&engine);
    FUZZ_CHECK(kigen_engine_evaluate(&engine, w->config, w->inventory, w->view, w->now) > 0);
    while (engine.n_outbox > 0)
        kigen_engine_delivered(&engine, engine.outbox[0].id);
    ctx = (struct kigen_proto_ctx){
        .config = w->config,
        .inventory = w->inventory,
        .engine = &engine,
        .now = w->now,
        .scans = 3,
        .files_read = 7,
        .files_unchanged = 12,
        .last_scan_end = w->now - 30,
        .last_scan_seconds = 0.25,
        .rescan = rescan_cb,
        .reload = reload_cb,
    };
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *answer = NULL;
    size_t len = 0;
    json_error_t jerr;
    json_t *j;
    int r;

    r = kigen_proto_answer(&ctx, (const char *)data, size, size & 1, &answer, &len);
    FUZZ_CHECK(r == 0 || r == -ENOMEM);
    if (r < 0)
        return 0;
    FUZZ_CHECK(answer != NULL && strlen(answer) == len);
    FUZZ_CHECK(!memchr(answer, '\n', len));
    /* Only metrics may hold UTF-8 as is (proto.h); every other answer is ASCII. */
    if (strncmp(answer, "{\"ok\":true,\"metrics\":", 21) != 0)
        for (size_t i = 0; i < len; i++)
            FUZZ_CHECK((unsigned char)answer[i] < 0x80);
    j = json_loadb(answer, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        fprintf(stderr, "answer is not JSON (%s): %s\n", jerr.text, answer);
    FUZZ_CHECK(j != NULL);
    FUZZ_CHECK(json_is_object(j));
    /* Either {"ok":...} or the SPEC §6 document of list, which has no "ok". */
    if (json_object_get(j, "ok")) {
        FUZZ_CHECK(json_is_boolean(json_object_get(j, "ok")));
        if (json_is_false(json_object_get(j, "ok")))
            FUZZ_CHECK(json_is_string(json_object_get(j, "error")));
    } else {
        FUZZ_CHECK(json_is_object(json_object_get(j, "summary")));
    }
    json_decref(j);
    free(answer);
    return 0;
}

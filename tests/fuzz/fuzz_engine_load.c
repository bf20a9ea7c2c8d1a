/*
 * The alert engine's state file (state_dir/state.jsonl): kigen_engine_load() on hostile
 * text. A text it accepts must then behave as the daemon uses it: saved again (and that
 * saved text loads back to the same lines), evaluated against an inventory (fuzz_world: the
 * fingerprints 1111..., 3333..., 4444..., 5555..., 6666... are in it), asked for its next
 * wake-up, and saved once more. A text it refuses leaves the engine empty (engine.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "fuzz.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* text's lines, sorted: a map's order of iteration is not part of the format. */
static char **sorted_lines(char *text, size_t *ret_n)
{
    size_t n = 0, i = 0;
    char **v, *save = NULL, *line;

    for (const char *p = text; *p; p++)
        n += *p == '\n';
    v = calloc(n + 1, sizeof(*v));
    FUZZ_CHECK(v != NULL);
    for (line = strtok_r(text, "\n", &save); line && i < n; line = strtok_r(NULL, "\n", &save))
        v[i++] = line;
    qsort(v, i, sizeof(*v), cmp_str);
    *ret_n = i;
    return v;
}

/* Saves engine; the text must load back and save to the same lines. */
static void check_round_trip(const struct kigen_engine *engine)
{
    struct kigen_engine again;
    char *text = NULL, *text2 = NULL, errbuf[512] = "", **a, **b;
    size_t len = 0, len2 = 0, na, nb;
    int r;

    r = kigen_engine_save(engine, &text, &len);
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(strlen(text) == len);
    kigen_engine_init(&again);
    r = kigen_engine_load(&again, text, len, errbuf, sizeof(errbuf));
    if (r != 0)
        fprintf(stderr, "saved state does not load: %s\n", errbuf);
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(kigen_engine_save(&again, &text2, &len2) == 0);
    a = sorted_lines(text, &na);
    b = sorted_lines(text2, &nb);
    FUZZ_CHECK(na == nb);
    for (size_t i = 0; i < na; i++)
        FUZZ_CHECK(strcmp(a[i], b[i]) == 0);
    free(a);
    free(b);
    free(text);
    free(text2);
    kigen_engine_done(&again);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)fuzz_world();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fuzz_world *w = fuzz_world();
    struct kigen_engine engine;
    char errbuf[512] = "";
    int64_t wake;
    int r;

    kigen_engine_init(&engine);
    r = kigen_engine_load(&engine, (const char *)data, size, errbuf, sizeof(errbuf));
    FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
    if (r < 0) {
        FUZZ_CHECK(r != -EINVAL || errbuf[0] != '\0');
        FUZZ_CHECK(engine.certs.n == 0 && engine.errors.n == 0 && engine.n_outbox == 0);
        goto out;
    }
    check_round_trip(&engine);
    r = kigen_engine_evaluate(&engine, w->config, w->inventory, w->view, w->now);
    FUZZ_CHECK(r >= 0);
    wake = kigen_engine_next_wakeup(&engine, w->config, w->view, w->now);
    FUZZ_CHECK(wake > w->now);
    check_round_trip(&engine);
    /* The sinks are done with every alert. */
    while (engine.n_outbox > 0)
        kigen_engine_delivered(&engine, engine.outbox[0].id);
out:
    kigen_engine_done(&engine);
    return 0;
}

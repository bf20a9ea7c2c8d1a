/* A single DER certificate (X.690, RFC 5280 §4.1). */
#include "err.h"
#include "read.h"

int kigen_read_der(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   struct kigen_certs *certs, char *errbuf, size_t errlen)
{
    int r = kigen_certs_add_der(certs, ctx, buf, len, "0");

    if (r == -KIGEN_E_MALFORMED)
        return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "not a valid DER certificate");
    return r < 0 ? r : 1;
}

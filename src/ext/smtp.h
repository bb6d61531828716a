/* smtp.h: sends one RFC 5322 message over SMTP with libcurl (plain, STARTTLS
 * or implicit TLS, optional AUTH). Blocking: call only on a background or
 * pool thread, never on an event loop. */
#ifndef RS_SMTP_H
#define RS_SMTP_H

#include <stdbool.h>

#include "../core/error.h"

struct rs_smtp_config {
    const char *url;                 /* smtp://host[:port] or smtps://host[:port] */
    int security;                    /* 0 none, 1 starttls (required), 2 implicit tls */
    const char *username, *password; /* NULL or "": no AUTH */
    const char *envelope_from;       /* addr-spec for MAIL FROM */
    int timeout_ms;                  /* connect and whole-transaction limit; <= 0: 10 s */
    bool verify_tls;                 /* check the server's certificate and name */
};

/* Sends message (whole text, CRLF lines; dot-stuffing is libcurl's) to one
 * recipient (addr-spec). 0, or -RS_EUNAVAILABLE with a readable message in
 * err->message and err->log_detail: what failed, the SMTP reply code and
 * the server's last reply line when there is one, and curl's own error.
 * Thread-safe; one connection per call. */
int rs_smtp_send(const struct rs_smtp_config *cfg, const char *rcpt, const char *message,
                 struct rs_error *err) RS_WUR;

#endif

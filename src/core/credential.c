/* credential.c: constructors and destructors of the sign-in records. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "credential.h"

void rs_credential_init(struct rs_credential *c, int64_t user_id)
{
    memset(c, 0, sizeof(*c));
    c->user_id = user_id;
    c->password_hash = rs_xstrdup("");
    c->totp_secret = rs_xstrdup("");
    c->totp_pending = rs_xstrdup("");
    c->ip_ranges = rs_xstrdup("[]");
}

void rs_credential_release(struct rs_credential *c)
{
    if (!c)
        return;
    if (c->password_hash)
        sodium_memzero(c->password_hash, strlen(c->password_hash));
    free(c->password_hash);
    free(c->totp_secret);
    free(c->totp_pending);
    free(c->ip_ranges);
    memset(c, 0, sizeof(*c));
}

void rs_session_release(struct rs_session *s)
{
    if (!s)
        return;
    free(s->ip);
    free(s->user_agent);
    memset(s, 0, sizeof(*s));
}

void rs_sessions_free(struct rs_session *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rs_session_release(&items[i]);
    free(items);
}

void rs_mail_release(struct rs_mail *m)
{
    if (!m)
        return;
    free(m->kind);
    free(m->to_addr);
    free(m->subject);
    free(m->message);
    free(m->status);
    free(m->last_error);
    memset(m, 0, sizeof(*m));
}

void rs_mails_free(struct rs_mail *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rs_mail_release(&items[i]);
    free(items);
}

void rs_work_release(struct rs_work *w)
{
    if (!w)
        return;
    free(w->kind);
    free(w->payload);
    memset(w, 0, sizeof(*w));
}

void rs_works_free(struct rs_work *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rs_work_release(&items[i]);
    free(items);
}

/* smtp.c: rs_smtp_send over libcurl's easy interface: one handle and one
 * connection per message, no signals (threads), bounded in time. The last
 * reply line the server sent is kept (debug callback) so a refusal reads as
 * the server's own words, e.g. "535 5.7.8 Authentication failed". */
/* Without curl's type-checking macros the calls below can go through the
 * function pointers of the table loaded on first use. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "smtp.h"

#define SMTP_DEFAULT_TIMEOUT_MS 10000
#define SMTP_REPLY_MAX 300

/* libcurl is loaded on the first send (as libpq is on the first postgres://
 * URL): linking it maps GnuTLS, Kerberos, the LDAP client, libssh2 and more
 * into every process, about 4 MB of resident memory a daemon that may never
 * send mail does not need. */
static struct {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_perform) *easy_perform;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
} lc;
#define curl_global_init (lc.global_init)
#define curl_easy_init (lc.easy_init)
#undef curl_easy_setopt
#define curl_easy_setopt (lc.easy_setopt)
#define curl_easy_perform (lc.easy_perform)
#undef curl_easy_getinfo
#define curl_easy_getinfo (lc.easy_getinfo)
#define curl_easy_cleanup (lc.easy_cleanup)
#define curl_easy_strerror (lc.easy_strerror)
#define curl_slist_append (lc.slist_append)
#define curl_slist_free_all (lc.slist_free_all)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;
static char curl_load_error[256];

static bool curl_load(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(curl_load_error, sizeof(curl_load_error),
                 "libcurl is not installed (Debian package libcurl4): %s", dlerror());
        return false;
    }
    static const char *const names[] = {
        "curl_global_init",  "curl_easy_init",     "curl_easy_setopt",
        "curl_easy_perform", "curl_easy_getinfo",  "curl_easy_cleanup",
        "curl_easy_strerror", "curl_slist_append", "curl_slist_free_all"};
    void **slots = (void **)&lc;
    for (size_t i = 0; i < RS_ARRAY_LEN(names); i++) {
        slots[i] = dlsym(h, names[i]);
        if (!slots[i]) {
            snprintf(curl_load_error, sizeof(curl_load_error), "libcurl lacks %s", names[i]);
            return false;
        }
    }
    return true;
}

static void curl_init(void)
{
    if (curl_load())
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct upload {
    const char *data;
    size_t len, off;
};

static size_t read_message(char *buf, size_t size, size_t nitems, void *arg)
{
    struct upload *u = arg;
    size_t room = size * nitems;
    size_t left = u->len - u->off;
    size_t n = left < room ? left : room;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

/* Keeps the last refusal (a 4xx or 5xx reply line) the server sent: curl
 * reports SMTP replies as incoming header data, and after a refusal it still
 * says QUIT, so the last line overall would be "221 Bye". */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
    (void)h;
    if (type != CURLINFO_HEADER_IN || size == 0 || (data[0] != '4' && data[0] != '5'))
        return 0;
    char *reply = arg;
    while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r'))
        size--;
    if (size >= SMTP_REPLY_MAX)
        size = SMTP_REPLY_MAX - 1;
    memcpy(reply, data, size);
    reply[size] = '\0';
    for (size_t i = 0; i < size; i++) {
        if ((unsigned char)reply[i] < 0x20 || reply[i] == 0x7f)
            reply[i] = ' ';
    }
    return 0;
}

static void fail_message(struct rs_error *err, CURLcode cc, long code, const char *reply,
                         const char *errbuf)
{
    const char *what = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (reply[0]) {
        rs_error_set(err, RS_EUNAVAILABLE, "the SMTP server refused the message: %s (%s)", reply,
                     what);
    } else if (code >= 400) {
        rs_error_set(err, RS_EUNAVAILABLE, "SMTP failed with reply code %ld: %s", code, what);
    } else {
        rs_error_set(err, RS_EUNAVAILABLE, "could not send mail: %s", what);
    }
    rs_error_log(err, "smtp: curl %d, reply code %ld, last reply \"%s\": %s", (int)cc, code,
                 reply, what);
}

int rs_smtp_send(const struct rs_smtp_config *cfg, const char *rcpt, const char *message,
                 struct rs_error *err)
{
    pthread_once(&curl_once, curl_init);
    if (curl_load_error[0])
        return rs_error_set(err, RS_EUNAVAILABLE, "cannot send mail: %s", curl_load_error);
    if (curl_init_result != CURLE_OK)
        return rs_error_set(err, RS_EUNAVAILABLE, "could not initialise libcurl: %s",
                            curl_easy_strerror(curl_init_result));
    if (!cfg->url || !cfg->envelope_from || !rcpt || !message)
        return rs_error_set(err, RS_EINTERNAL, "incomplete SMTP request");
    if (strchr(rcpt, '\r') || strchr(rcpt, '\n') || strchr(cfg->envelope_from, '\r') ||
        strchr(cfg->envelope_from, '\n'))
        return rs_error_set(err, RS_EUNAVAILABLE, "an envelope address holds a line break");

    CURL *h = curl_easy_init();
    if (!h)
        return rs_error_set(err, RS_EUNAVAILABLE, "could not create a libcurl handle");
    char errbuf[CURL_ERROR_SIZE] = "";
    char reply[SMTP_REPLY_MAX] = "";
    char *from = rs_xasprintf("<%s>", cfg->envelope_from);
    char *to = rs_xasprintf("<%s>", rcpt);
    struct curl_slist *rcpts = curl_slist_append(NULL, to);
    struct upload up = {.data = message, .len = strlen(message), .off = 0};
    int timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : SMTP_DEFAULT_TIMEOUT_MS;

    curl_easy_setopt(h, CURLOPT_URL, cfg->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.len);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, reply);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    if (cfg->security == 1)
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, cfg->verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, cfg->verify_tls ? 2L : 0L);
    if (cfg->username && cfg->username[0]) {
        curl_easy_setopt(h, CURLOPT_USERNAME, cfg->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
    }

    int r = 0;
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        long code = 0;
        if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
            code = 0;
        fail_message(err, cc, code, reply, errbuf);
        r = -RS_EUNAVAILABLE;
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(rcpts);
    free(from);
    free(to);
    return r;
}

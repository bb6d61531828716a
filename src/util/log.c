/* log.c: JSON log lines on stderr (see log.h). */
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

static _Atomic int current_level = RS_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void rs_log_set_level(enum rs_log_level level)
{
    atomic_store(&current_level, (int)level);
}

enum rs_log_level rs_log_get_level(void)
{
    return (enum rs_log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

int rs_log_level_parse(const char *s, enum rs_log_level *ret)
{
    for (size_t i = 0; i < RS_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *ret = (enum rs_log_level)i;
            return 0;
        }
    }
    return -1;
}

void rs_log_line(const char *json, size_t len)
{
    char *line = rs_xmalloc(len + 1);
    memcpy(line, json, len);
    line[len] = '\n';
    ssize_t r = write(STDERR_FILENO, line, len + 1);
    (void)r; /* nowhere left to report a failed log write */
    free(line);
}

void rs_log(enum rs_log_level level, const char *msg, ...)
{
    if (!rs_log_enabled(level))
        return;
    char ts[RS_TIME_STR_MAX];
    rs_time_format(rs_wall_ms(), ts);
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "msg", json_string(msg));
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        json_object_set_new(o, k, v ? json_string(v) : json_null());
    }
    va_end(ap);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s) {
        rs_log_line(s, strlen(s));
        free(s);
    }
}

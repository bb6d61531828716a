/* log.h: one structured JSON line per event, written to stderr with a single
 * write(2) so lines from several threads never interleave. Libraries don't log:
 * the layer that handles an event logs it once. Never pass secrets. */
#ifndef RS_LOG_H
#define RS_LOG_H

#include "util.h"

enum rs_log_level { RS_LOG_DEBUG, RS_LOG_INFO, RS_LOG_WARN, RS_LOG_ERROR, RS_LOG_OFF };

void rs_log_set_level(enum rs_log_level level);
enum rs_log_level rs_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns -1 if unknown. */
int rs_log_level_parse(const char *s, enum rs_log_level *ret) RS_WUR;

static inline int rs_log_enabled(enum rs_log_level level)
{
    return level >= rs_log_get_level();
}

/* Writes {"ts":…,"level":…,"msg":msg, <kv pairs>}. The kv arguments are pairs
 * of const char * key and const char * value, ended by NULL; values are
 * JSON-escaped. Use rs_log_json() for a prebuilt object. */
void rs_log(enum rs_log_level level, const char *msg, ...) __attribute__((sentinel));

/* Writes an already-encoded JSON object line (the caller includes ts/level). */
void rs_log_line(const char *json, size_t len);

#endif

/* pq_dl.c: loading libpq on first use (see pq_dl.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define RS_PQ_DL_IMPL
#include "pq_dl.h"

struct rs_pq rs_pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[200];

static void *sym(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (!p && !load_error[0])
        snprintf(load_error, sizeof(load_error), "libpq has no %s", name);
    return p;
}

static void load(void)
{
    void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_error, sizeof(load_error), "%s", why ? why : "libpq.so.5 not found");
        return;
    }
    /* The library stays loaded for the life of the process. */
    *(void **)&rs_pq.PQclear = sym(lib, "PQclear");
    *(void **)&rs_pq.PQntuples = sym(lib, "PQntuples");
    *(void **)&rs_pq.PQgetvalue = sym(lib, "PQgetvalue");
    *(void **)&rs_pq.PQstatus = sym(lib, "PQstatus");
    *(void **)&rs_pq.PQresultStatus = sym(lib, "PQresultStatus");
    *(void **)&rs_pq.PQgetisnull = sym(lib, "PQgetisnull");
    *(void **)&rs_pq.PQexec = sym(lib, "PQexec");
    *(void **)&rs_pq.PQerrorMessage = sym(lib, "PQerrorMessage");
    *(void **)&rs_pq.PQfinish = sym(lib, "PQfinish");
    *(void **)&rs_pq.PQcmdTuples = sym(lib, "PQcmdTuples");
    *(void **)&rs_pq.PQresultErrorField = sym(lib, "PQresultErrorField");
    *(void **)&rs_pq.PQfreemem = sym(lib, "PQfreemem");
    *(void **)&rs_pq.PQcmdStatus = sym(lib, "PQcmdStatus");
    *(void **)&rs_pq.PQtransactionStatus = sym(lib, "PQtransactionStatus");
    *(void **)&rs_pq.PQsocket = sym(lib, "PQsocket");
    *(void **)&rs_pq.PQsetNoticeProcessor = sym(lib, "PQsetNoticeProcessor");
    *(void **)&rs_pq.PQsetClientEncoding = sym(lib, "PQsetClientEncoding");
    *(void **)&rs_pq.PQresultErrorMessage = sym(lib, "PQresultErrorMessage");
    *(void **)&rs_pq.PQreset = sym(lib, "PQreset");
    *(void **)&rs_pq.PQnotifies = sym(lib, "PQnotifies");
    *(void **)&rs_pq.PQexecParams = sym(lib, "PQexecParams");
    *(void **)&rs_pq.PQprepare = sym(lib, "PQprepare");
    *(void **)&rs_pq.PQexecPrepared = sym(lib, "PQexecPrepared");
    *(void **)&rs_pq.PQconsumeInput = sym(lib, "PQconsumeInput");
    *(void **)&rs_pq.PQconninfoParse = sym(lib, "PQconninfoParse");
    *(void **)&rs_pq.PQconninfoFree = sym(lib, "PQconninfoFree");
    *(void **)&rs_pq.PQconnectdbParams = sym(lib, "PQconnectdbParams");
}

int rs_pq_load(struct rs_error *err)
{
    pthread_once(&once, load);
    if (load_error[0])
        return rs_error_set(err, RS_EUNAVAILABLE,
                            "PostgreSQL support needs libpq (Debian package libpq5): %s",
                            load_error);
    return 0;
}

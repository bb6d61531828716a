/* pq_dl.h: libpq, loaded on first use. A server on SQLite never maps libpq
 * nor what it drags in (GnuTLS, Kerberos, LDAP client): about 2.5 MB of
 * resident memory on a daemon that aims for 10. postgres.c includes this
 * after <libpq-fe.h>; every PQ function it uses is then a call through
 * rs_pq, filled by rs_pq_load(). Add a function here before using it. */
#ifndef RS_PQ_DL_H
#define RS_PQ_DL_H

#include <libpq-fe.h>

#include "../core/error.h"

struct rs_pq {
    __typeof__(PQclear) *PQclear;
    __typeof__(PQntuples) *PQntuples;
    __typeof__(PQgetvalue) *PQgetvalue;
    __typeof__(PQstatus) *PQstatus;
    __typeof__(PQresultStatus) *PQresultStatus;
    __typeof__(PQgetisnull) *PQgetisnull;
    __typeof__(PQexec) *PQexec;
    __typeof__(PQerrorMessage) *PQerrorMessage;
    __typeof__(PQfinish) *PQfinish;
    __typeof__(PQcmdTuples) *PQcmdTuples;
    __typeof__(PQresultErrorField) *PQresultErrorField;
    __typeof__(PQfreemem) *PQfreemem;
    __typeof__(PQcmdStatus) *PQcmdStatus;
    __typeof__(PQtransactionStatus) *PQtransactionStatus;
    __typeof__(PQsocket) *PQsocket;
    __typeof__(PQsetNoticeProcessor) *PQsetNoticeProcessor;
    __typeof__(PQsetClientEncoding) *PQsetClientEncoding;
    __typeof__(PQresultErrorMessage) *PQresultErrorMessage;
    __typeof__(PQreset) *PQreset;
    __typeof__(PQnotifies) *PQnotifies;
    __typeof__(PQexecParams) *PQexecParams;
    __typeof__(PQprepare) *PQprepare;
    __typeof__(PQexecPrepared) *PQexecPrepared;
    __typeof__(PQconsumeInput) *PQconsumeInput;
    __typeof__(PQconninfoParse) *PQconninfoParse;
    __typeof__(PQconninfoFree) *PQconninfoFree;
    __typeof__(PQconnectdbParams) *PQconnectdbParams;
};

extern struct rs_pq rs_pq;

/* Loads libpq.so.5 once (thread-safe). Returns 0, or -RS_EUNAVAILABLE with
 * err naming what is missing. */
int rs_pq_load(struct rs_error *err) RS_WUR;

#ifndef RS_PQ_DL_IMPL /* pq_dl.c fills the table by these names */
#define PQclear (rs_pq.PQclear)
#define PQntuples (rs_pq.PQntuples)
#define PQgetvalue (rs_pq.PQgetvalue)
#define PQstatus (rs_pq.PQstatus)
#define PQresultStatus (rs_pq.PQresultStatus)
#define PQgetisnull (rs_pq.PQgetisnull)
#define PQexec (rs_pq.PQexec)
#define PQerrorMessage (rs_pq.PQerrorMessage)
#define PQfinish (rs_pq.PQfinish)
#define PQcmdTuples (rs_pq.PQcmdTuples)
#define PQresultErrorField (rs_pq.PQresultErrorField)
#define PQfreemem (rs_pq.PQfreemem)
#define PQcmdStatus (rs_pq.PQcmdStatus)
#define PQtransactionStatus (rs_pq.PQtransactionStatus)
#define PQsocket (rs_pq.PQsocket)
#define PQsetNoticeProcessor (rs_pq.PQsetNoticeProcessor)
#define PQsetClientEncoding (rs_pq.PQsetClientEncoding)
#define PQresultErrorMessage (rs_pq.PQresultErrorMessage)
#define PQreset (rs_pq.PQreset)
#define PQnotifies (rs_pq.PQnotifies)
#define PQexecParams (rs_pq.PQexecParams)
#define PQprepare (rs_pq.PQprepare)
#define PQexecPrepared (rs_pq.PQexecPrepared)
#define PQconsumeInput (rs_pq.PQconsumeInput)
#define PQconninfoParse (rs_pq.PQconninfoParse)
#define PQconninfoFree (rs_pq.PQconninfoFree)
#define PQconnectdbParams (rs_pq.PQconnectdbParams)
#endif

#endif

-- 0008_work_queue: requests whose work runs on the background jobs thread.
--
-- A forgotten-password request is answered at once, with the same work
-- whatever the address: two rate counters and one row here. The lookup, the
-- token and the mail happen later, in the `resets` job, so the answer's
-- timing cannot tell whether an account uses the address
-- (docs/design/auth-contract.md, "Forgotten passwords").
--
-- payload: a JSON object of the kind's own fields. A row is deleted in the
-- transaction that does its work, so it is done once.
CREATE TABLE work_queue (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX work_queue_kind ON work_queue (kind, id);

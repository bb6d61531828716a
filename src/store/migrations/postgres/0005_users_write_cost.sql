-- 0005_users_write_cost: one index fewer to write per create.
-- audit_events_at: no query reads audit events by time (the trail is read
-- per target, audit_events_target, newest id first), and ids already follow
-- time.
DROP INDEX IF EXISTS audit_events_at;

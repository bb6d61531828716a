-- 0006_search_index_deferred: the trigram index is brought up to date in
-- batches by the store's indexer thread instead of inside every write.
--
-- Indexing a user inside the create's own transaction wrote a new FTS5
-- segment per commit (about 7 of the 25 WAL pages a create wrote, and a
-- third of its CPU). Now a write only notes the user in users_fts_pending
-- (one page, appended), and the indexer folds the pending users into the
-- index a few hundred at a time, in one transaction per batch.
--
-- Search stays exact meanwhile: the store answers a text query from the
-- index for users not pending, and by reading the current search_key of the
-- pending ones (sqlite.c, "text search").
--
-- indexed_key is what the index holds for the user: NULL when it holds
-- nothing (a user created since the last batch), else the search_key from
-- before the first change since the last batch. Later changes keep the
-- first note (INSERT OR IGNORE), since that is still what the index holds.
-- Invariant: a user not in users_fts_pending is indexed under exactly their
-- current search_key.
CREATE TABLE users_fts_pending (
    user_id     INTEGER PRIMARY KEY,
    indexed_key TEXT
);
DROP TRIGGER users_fts_insert;
DROP TRIGGER users_fts_delete;
DROP TRIGGER users_fts_update;
CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
    INSERT OR IGNORE INTO users_fts_pending (user_id, indexed_key) VALUES (NEW.id, NULL);
END;
CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
    INSERT OR IGNORE INTO users_fts_pending (user_id, indexed_key)
        VALUES (OLD.id, OLD.search_key);
END;
CREATE TRIGGER users_fts_update AFTER UPDATE OF search_key ON users
    WHEN OLD.search_key IS NOT NEW.search_key BEGIN
    INSERT OR IGNORE INTO users_fts_pending (user_id, indexed_key)
        VALUES (OLD.id, OLD.search_key);
END;

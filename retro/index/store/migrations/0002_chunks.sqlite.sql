-- Indexed texts with their vectors (float32 BLOBs) and an FTS5 index kept in sync by triggers.
CREATE TABLE chunks (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,      -- content hash of (embedding model, text)
    embedding BLOB NOT NULL,
    PRIMARY KEY (incident_id, field, seq)
);
CREATE INDEX chunks_hash ON chunks (hash);

CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    text, content = 'chunks', content_rowid = 'rowid', tokenize = 'porter unicode61'
);
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER chunks_au AFTER UPDATE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO chunks_fts (rowid, text) VALUES (new.rowid, new.text);
END;

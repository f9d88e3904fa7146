-- Indexed texts with pgvector vectors and a tsvector for full-text search. The vector column gets
-- its dimension, and its HNSW index, when the first embedding model is bound to the store.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE chunks (
    id BIGSERIAL UNIQUE,
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,      -- content hash of (embedding model, text)
    embedding vector NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    PRIMARY KEY (incident_id, field, seq)
);
CREATE INDEX chunks_hash ON chunks (hash);
CREATE INDEX chunks_tsv ON chunks USING GIN (tsv);

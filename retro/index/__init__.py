"""Similar past incidents: what is indexed, the stores behind it, search and repeats.

- `content.py`: an incident's own words, without the template wording of drafts
  (`data/boilerplate.v1.yaml`); `corpus.py`: reading drafts and JSON/JSONL corpora.
- `embeddings.py`: the packaged all-MiniLM-L6-v2 in numpy (and other embedders).
- `store/`: SQLite (FTS5 + vectors) and PostgreSQL (pgvector + full text) behind one interface.
- `similarity.py`: indexing, hybrid search, similar postmortems; `repeats.py`: the repeat
  measure and its calibrated threshold; `service.py`: the index commands as library functions.
"""

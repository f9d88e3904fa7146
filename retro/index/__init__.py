"""Similar past incidents: embeddings, the stores behind them, and search.

- `embeddings.py`: the packaged all-MiniLM-L6-v2 in numpy (and other embedders).
- `store/`: SQLite (FTS5 + vectors) and PostgreSQL (pgvector + full text) behind one interface.
- `similarity.py`: indexing postmortems and hybrid search; `corpus.py`: importing corpora.
"""

"""The knowledge pack (data) and its loading, chunking, indexing and retrieval."""

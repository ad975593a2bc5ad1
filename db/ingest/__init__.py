"""Ingest: the live-blog page parser, the gazetteer and the entity linker."""

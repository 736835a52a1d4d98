"""SQLite storage of anonymous aggregates (sqlite-utils, WAL, explicit migrations)."""

//! The storage test suite lives in `tests/storage.rs`; it runs every case on SQLite and PostgreSQL.

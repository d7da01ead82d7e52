//! All of the server's integration tests, in one binary to save link time. Each test starts the
//! real server on 127.0.0.1:0 with a fresh store and drives it over HTTP, on SQLite and (when
//! `MESHWORK_TEST_POSTGRES_URL` is set) on PostgreSQL.

mod integration {
    mod accounts;
    mod bad_input;
    mod canary;
    mod carddav;
    mod clamd;
    pub mod common;
    mod connectors;
    mod contract;
    pub mod crm;
    mod dovecot;
    mod forms;
    mod import;
    mod jobs;
    mod lists;
    mod mail;
    mod operations;
    mod overlap;
    mod pages;
    mod radicale;
    mod rights;
    mod route_matrix;
    mod search;
    mod security;
    mod security_keys;
    mod slapd;
    mod sources;
    mod startup;
    mod workspaces;
}

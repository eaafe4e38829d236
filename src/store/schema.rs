//! Versioned migrations. Each entry is applied once, in order, in one transaction, and
//! `PRAGMA user_version` records how far a database has come. Never edit a released entry;
//! add a new one.

/// The migrations, index + 1 = the version they bring a database to.
pub const MIGRATIONS: &[&str] = &[
    // 1: members, reports, observables, campaign ids.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE members (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        category   TEXT NOT NULL,
        sector     TEXT,
        class      TEXT NOT NULL,
        status     TEXT NOT NULL DEFAULT 'approved',
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX members_name ON members(name) WHERE name <> '【非公表】';
    CREATE TABLE tokens (
        hash       TEXT PRIMARY KEY,
        member_id  TEXT NOT NULL REFERENCES members(id),
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE reports (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        origin_kind  TEXT NOT NULL CHECK (origin_kind IN ('submission', 'feed_item')),
        member_id    TEXT REFERENCES members(id),
        feed         TEXT,
        received_at  TEXT NOT NULL,
        title        TEXT NOT NULL,
        tlp          TEXT NOT NULL,
        confidence   TEXT NOT NULL,
        external_id  TEXT,
        content_hash TEXT NOT NULL,
        body         TEXT NOT NULL
    );
    CREATE UNIQUE INDEX reports_feed_item ON reports(feed, external_id)
        WHERE feed IS NOT NULL AND external_id IS NOT NULL;
    CREATE INDEX reports_feed_hash ON reports(feed, content_hash) WHERE feed IS NOT NULL;
    CREATE TABLE report_observables (
        seq   INTEGER NOT NULL REFERENCES reports(seq),
        kind  TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (seq, kind, value)
    ) WITHOUT ROWID;
    CREATE INDEX report_observables_value ON report_observables(kind, value);
    CREATE TABLE campaign_reports (
        seq         INTEGER PRIMARY KEY REFERENCES reports(seq),
        campaign_id TEXT NOT NULL
    );
    CREATE INDEX campaign_reports_campaign ON campaign_reports(campaign_id);
    CREATE TABLE campaign_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT NOT NULL,
        campaign_id TEXT NOT NULL,
        event       TEXT NOT NULL
    );
    CREATE INDEX campaign_events_campaign ON campaign_events(campaign_id);
    "#,
    // 2: the console's review records: analysts' dispositions and merge/split requests.
    // The same tables the council review module defines, created only if absent, so that
    // either order of the two changes leaves one schema.
    r#"
    CREATE TABLE IF NOT EXISTS dispositions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign_id TEXT NOT NULL,
        disposition TEXT NOT NULL,
        note        TEXT NOT NULL,
        analyst     TEXT NOT NULL,
        at          TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS dispositions_campaign ON dispositions(campaign_id, at);
    CREATE TABLE IF NOT EXISTS pins (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kind         TEXT NOT NULL CHECK (kind IN ('merge', 'split')),
        campaign_a   TEXT NOT NULL,
        campaign_b   TEXT,
        reports      TEXT,
        note         TEXT NOT NULL,
        analyst      TEXT NOT NULL,
        at           TEXT NOT NULL,
        withdrawn_at TEXT
    );
    "#,
];

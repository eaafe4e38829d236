//! Versioned migrations. Each entry is applied once, in order, in one transaction, and
//! `PRAGMA user_version` records how far a database has come. Never edit a released entry;
//! add a new one.

/// The migration that creates the TAXII object log (backfilled in Rust after it runs).
pub const TAXII_LOG_VERSION: usize = 9;

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
    // 2: council: membership lifecycle, releases, sightings, feedback requests, review
    // (dispositions, pins), audit.
    r#"
    ALTER TABLE members ADD COLUMN cohort INTEGER;
    CREATE TABLE member_status (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        member_id TEXT NOT NULL REFERENCES members(id),
        status    TEXT NOT NULL CHECK (status IN ('applied', 'approved', 'suspended', 'expelled')),
        at        TEXT NOT NULL,
        actor     TEXT NOT NULL,
        note      TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX member_status_member ON member_status(member_id);
    CREATE TABLE releases (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        target_kind TEXT NOT NULL CHECK (target_kind IN ('report', 'campaign')),
        target      TEXT NOT NULL,
        released_at TEXT NOT NULL,
        analyst     TEXT NOT NULL
    );
    CREATE INDEX releases_target ON releases(target_kind, target);
    CREATE TABLE feedback_requests (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign_id TEXT NOT NULL,
        question    TEXT NOT NULL,
        classes     TEXT NOT NULL,
        analyst     TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        closed_at   TEXT
    );
    CREATE TABLE sightings (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        member_id   TEXT NOT NULL REFERENCES members(id),
        target_kind TEXT NOT NULL CHECK (target_kind IN ('observable', 'campaign')),
        obs_kind    TEXT,
        obs_value   TEXT,
        campaign_id TEXT,
        kind        TEXT NOT NULL CHECK (kind IN ('seen', 'not-seen', 'false-positive')),
        count       INTEGER NOT NULL,
        seen_at     TEXT NOT NULL,
        received_at TEXT NOT NULL,
        request_id  INTEGER REFERENCES feedback_requests(id)
    );
    CREATE INDEX sightings_observable ON sightings(obs_kind, obs_value) WHERE obs_kind IS NOT NULL;
    CREATE INDEX sightings_campaign ON sightings(campaign_id) WHERE campaign_id IS NOT NULL;
    CREATE TABLE feedback_answers (
        request_id  INTEGER NOT NULL REFERENCES feedback_requests(id),
        member_id   TEXT NOT NULL REFERENCES members(id),
        sighting_id INTEGER NOT NULL REFERENCES sightings(id),
        note        TEXT NOT NULL DEFAULT '',
        answered_at TEXT NOT NULL,
        PRIMARY KEY (request_id, member_id)
    );
    CREATE TABLE dispositions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign_id TEXT NOT NULL,
        disposition TEXT NOT NULL,
        note        TEXT NOT NULL,
        analyst     TEXT NOT NULL,
        at          TEXT NOT NULL
    );
    CREATE INDEX dispositions_campaign ON dispositions(campaign_id, at);
    CREATE TABLE pins (
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
    CREATE TABLE audit (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at     TEXT NOT NULL,
        actor  TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_at ON audit(at);
    "#,
    // 3: feed poller state (conditional GET validators, backoff, last outcome).
    r#"
    CREATE TABLE feed_state (
        feed                 TEXT PRIMARY KEY,
        etag                 TEXT,
        last_modified        TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_attempt_after   TEXT,
        last_success         TEXT,
        last_error           TEXT,
        items_added          INTEGER NOT NULL DEFAULT 0,
        cursor               TEXT,
        updated_at           TEXT NOT NULL
    );
    "#,
    // 4: mail: members' addresses, digest windows, per-recipient deliveries, failures.
    r#"
    CREATE TABLE member_contacts (
        member_id TEXT PRIMARY KEY REFERENCES members(id),
        email     TEXT NOT NULL,
        language  TEXT NOT NULL DEFAULT 'ja'
    );
    CREATE TABLE digest_state (
        digest     TEXT PRIMARY KEY,
        sent_until TEXT NOT NULL
    );
    CREATE TABLE digest_pending (
        digest       TEXT PRIMARY KEY,
        window_start TEXT NOT NULL,
        window_end   TEXT NOT NULL
    );
    CREATE TABLE mail_deliveries (
        kind       TEXT NOT NULL,
        batch      TEXT NOT NULL,
        member_id  TEXT NOT NULL,
        message_id TEXT NOT NULL,
        sent_at    TEXT NOT NULL,
        PRIMARY KEY (kind, batch, member_id)
    ) WITHOUT ROWID;
    CREATE TABLE mail_failures (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      TEXT NOT NULL,
        context TEXT NOT NULL,
        error   TEXT NOT NULL
    );
    "#,
    // 5: releases are decisions about reports: a campaign release records the reports the
    // campaign held at that moment, so that later merges, links and pins never widen anyone's
    // view (a release used to be looked up through the report's *current* campaign).
    r#"
    CREATE TABLE released_reports (
        seq         INTEGER PRIMARY KEY REFERENCES reports(seq),
        released_at TEXT NOT NULL,
        release_id  INTEGER NOT NULL REFERENCES releases(id)
    );
    INSERT OR IGNORE INTO released_reports (seq, released_at, release_id)
        SELECT CAST(target AS INTEGER), released_at, id FROM releases
        WHERE target_kind = 'report'
          AND CAST(target AS INTEGER) IN (SELECT seq FROM reports);
    INSERT OR IGNORE INTO released_reports (seq, released_at, release_id)
        SELECT cr.seq, rl.released_at, rl.id FROM releases rl
        JOIN campaign_reports cr ON rl.target_kind = 'campaign' AND rl.target = cr.campaign_id
        JOIN reports r ON r.seq = cr.seq
        WHERE rl.released_at >= r.received_at;
    "#,
    // 6: token generation: bumped by every token rotation, revocation and status change, so
    // that a console session (which records the generation it was opened under) ends at once.
    r#"
    ALTER TABLE members ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;
    "#,
    // 7: mail: recipients the SMTP server refused for good (5xx) are recorded per batch, so a
    // digest completes for everyone else instead of retrying the whole window for ever.
    r#"
    CREATE TABLE mail_rejections (
        kind        TEXT NOT NULL,
        batch       TEXT NOT NULL,
        member_id   TEXT NOT NULL,
        error       TEXT NOT NULL,
        rejected_at TEXT NOT NULL,
        PRIMARY KEY (kind, batch, member_id)
    ) WITHOUT ROWID;
    "#,
    // 8: the council's secret for member-facing ids (`council::read::ids`): 32 random bytes
    // made once, kept with the data they protect (a restored store keeps its ids). SQLite's
    // randomblob is a CSPRNG (ChaCha20) seeded from the operating system.
    r#"
    INSERT OR IGNORE INTO meta (key, value) VALUES ('id_secret', lower(hex(randomblob(32))));
    "#,
    // 9: the TAXII object log (`store::taxii`): one row per STIX object a report gives,
    // keyed by (date added, id) so that a TAXII page is a range scan; the provider's own
    // STIX ids are kept. Sharing scope and recipients are copied out of the report body so
    // that the visibility test of a page needs no JSON decoding. Existing reports are
    // backfilled by `store::taxii::backfill` right after this migration.
    r#"
    CREATE TABLE taxii_objects (
        added_at   TEXT NOT NULL,
        stix_id    TEXT NOT NULL,
        seq        INTEGER NOT NULL REFERENCES reports(seq),
        kind       TEXT,
        value      TEXT,
        scope      TEXT,
        recipients TEXT,
        PRIMARY KEY (added_at, stix_id)
    ) WITHOUT ROWID;
    CREATE INDEX taxii_objects_id ON taxii_objects(stix_id);
    CREATE INDEX taxii_objects_seq ON taxii_objects(seq);
    "#,
    // 10: inquiries: the secretariat asks chosen member classes what they know about an
    // advisory (named by one of its feed items) or a campaign; members answer with reports.
    r#"
    CREATE TABLE inquiries (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        opened_at   TEXT NOT NULL,
        opened_by   TEXT NOT NULL,
        target_kind TEXT NOT NULL CHECK (target_kind IN ('advisory', 'campaign')),
        target      TEXT NOT NULL,
        question    TEXT NOT NULL,
        classes     TEXT NOT NULL
    );
    CREATE TABLE inquiry_answers (
        inquiry_id  INTEGER NOT NULL REFERENCES inquiries(id),
        seq         INTEGER NOT NULL REFERENCES reports(seq),
        answered_at TEXT NOT NULL,
        PRIMARY KEY (inquiry_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX inquiry_answers_seq ON inquiry_answers(seq);
    "#,
    // 11: feed health: whose feed it is (a member's own MISP: the secretariat's business, no
    // one else learns it exists) and what the last poll with content kept, normalised and
    // skipped, with the first few skip reasons (JSON array of "at: why").
    r#"
    ALTER TABLE feed_state ADD COLUMN member TEXT;
    ALTER TABLE feed_state ADD COLUMN items_kept INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE feed_state ADD COLUMN items_normalised INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE feed_state ADD COLUMN items_skipped INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE feed_state ADD COLUMN skip_reasons TEXT NOT NULL DEFAULT '[]';
    "#,
    // 12: several nodes on one store: the generation in which the leader last recorded a
    // report's campaign id, so that followers read only the assignments changed since they
    // last looked (`store::campaigns::assignments_since`). The leader's watermark
    // (`correlated_seq`, `correlation_generation`) lives in `meta`.
    r#"
    ALTER TABLE campaign_reports ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX campaign_reports_generation ON campaign_reports(generation);
    "#,
    // 13: console sessions, login nonces and failed credential counts live in the store, so
    // that any node behind a load balancer serves any console request and token guessing is
    // counted across nodes (`store::sessions`). Keyed by the SHA-256 of the session id or
    // nonce, never the value: a copy of the database opens no session.
    r#"
    CREATE TABLE console_sessions (
        id_hash      TEXT PRIMARY KEY,
        member_id    TEXT NOT NULL REFERENCES members(id),
        generation   INTEGER NOT NULL,
        created_at   TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    );
    CREATE INDEX console_sessions_created ON console_sessions(created_at);
    CREATE INDEX console_sessions_last_seen ON console_sessions(last_seen_at);
    CREATE TABLE login_nonces (
        nonce_hash TEXT PRIMARY KEY,
        issued_at  TEXT NOT NULL
    );
    CREATE INDEX login_nonces_issued ON login_nonces(issued_at);
    CREATE TABLE auth_failures (
        source       TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        failures     INTEGER NOT NULL,
        PRIMARY KEY (source, window_start)
    );
    "#,
    // 14: alerts that survive a leader failover (`store::alerts`): what was announced per
    // campaign (alerting flags, sectors; comma-separated names) and the campaign each report
    // belonged to then, the outbox of triggers (a reason as the council writes it) and the
    // batches claimed from it. "Never recorded" is the absence of `meta.alerts_version`.
    r#"
    CREATE TABLE alert_announced (
        campaign_id TEXT PRIMARY KEY,
        flags       TEXT NOT NULL,
        sectors     TEXT NOT NULL
    );
    CREATE TABLE alert_reports (
        seq         INTEGER PRIMARY KEY,
        campaign_id TEXT NOT NULL
    );
    CREATE TABLE alert_outbox (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT NOT NULL,
        campaign_id TEXT NOT NULL,
        reason      TEXT NOT NULL,
        batch       TEXT
    );
    CREATE INDEX alert_outbox_batch ON alert_outbox(batch);
    CREATE TABLE alert_batches (
        batch      TEXT PRIMARY KEY,
        claimed_at TEXT NOT NULL,
        done_at    TEXT
    );
    "#,
    // 15: digest windows bounded by commit order (`store::mail`): the last report seq a
    // completed window covered, and the seqs a pending window covers (after, through].
    // NULL in rows from before: those windows fall back to receipt times once.
    r#"
    ALTER TABLE digest_state ADD COLUMN sent_through INTEGER;
    ALTER TABLE digest_pending ADD COLUMN after_seq INTEGER;
    ALTER TABLE digest_pending ADD COLUMN through_seq INTEGER;
    "#,
];

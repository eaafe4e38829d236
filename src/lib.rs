//! musubi (結び): the correlation daemon of a national cyber-threat information-sharing council.
//!
//! Data flows one way through the modules, and each folder is one room of that flow:
//!
//! ```text
//! sources ─▶ formats ─▶ store (truth) ─▶ projections (index, correlate) ─▶ council::read ─▶ outputs, http, CLI
//! ```
//!
//! `ARCHITECTURE.md` is the five-minute map; `tests/it/layering.rs` checks the layer order.
//!
//! - [`model`]: observables, reports, sightings, campaigns, members, TLP (plain data).
//! - [`config`]: loading and validating `musubi.toml`, `feeds.toml` and `rules/`.
//! - [`sources`]: how reports arrive (HTTP submissions, feed pollers, file import).
//! - [`formats`]: one module per input format, each producing [`model::ReportDraft`]s.
//! - [`store`]: SQLite, the only truth; group-commit writer, readers, migrations.
//! - [`index`]: the tantivy full-text projection.
//! - [`correlate`]: the correlation graph projection: campaigns and flags.
//! - [`council`]: the access policy and the one read path ([`council::read`]: views for one
//!   viewer) every output goes through; typed commands, review, feedback, audit, statistics.
//! - [`outputs`]: digest and alert mail, STIX 2.1 / MISP feed / CSV exports, TAXII collections.
//! - [`http`]: the axum API, the TAXII 2.1 server and the analysts' console.
//! - [`metrics`]: process-wide counters for `/metrics` (the daemon and HTTP update them).
//! - [`daemon`]: wiring of tasks, channels, signals and shutdown.

pub mod config;
pub mod daemon;
pub mod formats;
pub mod http;
pub mod metrics;
pub mod model;
pub mod outputs;

/// The store and everything that reads it: the sources that write to it, the projections
/// and the council. The store's readers are visible inside this module only
/// (`pub(in crate::engine)`), and the council's read path ([`council::read`]) is the one
/// door out of it: `outputs`, `http`, `daemon` and the CLI stand outside and cannot name a
/// store reader — reading around the read path does not compile.
///
/// The folders stay where a newcomer looks for them (`src/store/`, `src/council/`, ...);
/// `#[path = "."]` only gives them a common parent to scope that visibility to.
#[path = "."]
pub mod engine {
    pub mod correlate;
    pub mod council;
    pub mod index;
    pub mod sources;
    pub mod store;
}

pub use engine::{correlate, council, index, sources, store};

//! musubi (結び): the correlation daemon of a national cyber-threat information-sharing council.
//!
//! Data flows one way through the modules, and each folder is one room of that flow:
//!
//! ```text
//! sources ─▶ formats ─▶ store (truth) ─▶ projections (index, correlate) ─▶ outputs, http
//!                                   council policy applies to every output
//! ```
//!
//! - [`model`]: observables, reports, sightings, campaigns, members, TLP (plain data).
//! - [`config`]: loading and validating `musubi.toml`, `feeds.toml` and `rules/`.
//! - [`sources`]: how reports arrive (HTTP submissions, feed pollers, file import).
//! - [`formats`]: one module per input format, each producing [`model::ReportDraft`]s.
//! - [`store`]: SQLite, the only truth; group-commit writer, readers, migrations.
//! - [`index`]: the tantivy full-text projection.
//! - [`correlate`]: the correlation graph projection: campaigns and flags.
//! - [`council`]: the access policy every output passes through; membership, releases,
//!   review, feedback, audit and statistics.
//! - [`outputs`]: digest and alert mail, STIX 2.1 / MISP feed / CSV exports, TAXII collections.
//! - [`http`]: the axum API, the TAXII 2.1 server and the analysts' console.
//! - [`daemon`]: wiring of tasks, channels, signals and shutdown.

pub mod config;
pub mod correlate;
pub mod council;
pub mod daemon;
pub mod formats;
pub mod http;
pub mod index;
pub mod model;
pub mod outputs;
pub mod sources;
pub mod store;

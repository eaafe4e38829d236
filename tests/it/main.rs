//! The one integration test binary: each module is a theme.

mod api;
mod auth_leaks;
mod console;
mod correlation_quality;
mod council;
mod council_leaks;
mod crash;
mod extract;
mod faults;
mod feed_faults;
mod feeds;
mod formats;
mod leak;
mod leak_harness;
mod mail;
mod mail_faults;
mod mail_leaks;
mod output_leaks;
mod provider_leaks;
mod read_path;
mod readonly;
mod search_leaks;
mod stix_patterns;
mod systemd;
mod taxii;
mod util;

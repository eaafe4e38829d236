//! The one integration test binary: each module is a theme.

mod api;
mod auth_leaks;
mod console;
mod correlation_quality;
mod council;
mod crash;
mod extract;
mod faults;
mod feed_faults;
mod feeds;
mod formats;
mod leak;
mod mail;
mod mail_faults;
mod readonly;
mod stix_patterns;
mod systemd;
mod taxii;
mod util;

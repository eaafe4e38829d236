//! The one integration test binary: each module is a theme.

mod api;
mod crash;
mod taxii;
mod util;

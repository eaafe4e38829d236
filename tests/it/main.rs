//! The one integration test binary: each module is a theme.

mod api;
mod console;
mod crash;
mod util;

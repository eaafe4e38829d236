//! TODO

pub mod feeds;

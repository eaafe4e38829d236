//! Sources: how reports arrive — HTTP submissions, feed pollers, file import.

pub mod demo;
pub mod feeds;
pub mod import;
pub mod submission;

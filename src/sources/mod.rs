//! Sources: how reports arrive — HTTP submissions, feed pollers, file import.

mod api_request;
pub mod demo;
pub mod feeds;
pub mod import;
pub mod misp_api;
pub mod submission;
pub mod taxii_client;

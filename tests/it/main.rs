mod extract;
mod feeds;
mod formats;

//! A node's role in a council that runs several musubi nodes on one store.

use serde::Serialize;

/// Whether this node holds the leader duties (feed polling, digests and alerts, recording
/// campaign ids) or only serves. Exactly one node of a council is leader at a time; a node
/// alone on its store (SQLite) is always leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Follower,
}

impl Role {
    pub fn is_leader(self) -> bool {
        self == Role::Leader
    }

    /// The word `/healthz` and `/metrics` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

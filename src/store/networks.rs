//! The networks each user has logged in from (`user_networks`), to notice a first login from
//! a new one. The network is given as text (`203.0.113.0/24`); what counts as one network is
//! the service layer's decision.

use super::{Db, on_tx};
use crate::error::Result;

/// What recording a login's network found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkSeen {
    /// The user had never logged in from this network.
    pub new: bool,
    /// How many networks the user had logged in from before this login.
    pub known_before: i64,
}

impl Db {
    /// Records that user `user_id` logged in from `network` (once per network).
    pub async fn record_user_network(&self, user_id: i64, network: &str) -> Result<NetworkSeen> {
        let mut tx = self.begin().await?;
        let insert = "INSERT INTO user_networks (user_id, network, first_seen) VALUES ($1, $2, $3)
            ON CONFLICT (user_id, network) DO NOTHING";
        let inserted = on_tx!(&mut tx, c => sqlx::query(insert)
            .bind(user_id).bind(network).bind(super::now())
            .execute(c).await.map(|r| r.rows_affected()))?;
        let count = "SELECT COUNT(*) FROM user_networks WHERE user_id = $1";
        let known: i64 =
            on_tx!(&mut tx, c => sqlx::query_scalar(count).bind(user_id).fetch_one(c).await)?;
        tx.commit().await?;
        let new = inserted == 1;
        Ok(NetworkSeen {
            new,
            known_before: if new { known - 1 } else { known },
        })
    }

    /// The networks a user has logged in from, oldest first.
    pub async fn user_networks(&self, user_id: i64) -> Result<Vec<String>> {
        let sql =
            "SELECT network FROM user_networks WHERE user_id = $1 ORDER BY first_seen, network";
        Ok(
            super::on_db!(self, pool => sqlx::query_scalar(sql).bind(user_id).fetch_all(pool).await)?,
        )
    }
}

//! The council's statistics as one viewer may receive them (see `council::stats` for
//! exactly what a member may see).

use chrono::NaiveDate;

use super::{ReadPath, Refused, Viewer};
use crate::council::stats::{self, StatsTable};

impl ReadPath {
    /// The statistics of `from..=to` for the viewer: any period and every campaign for the
    /// secretariat; closed whole months of decided campaigns for anyone else. `today` is
    /// the caller's clock (UTC), which decides whether a month has ended.
    pub async fn statistics(
        &self,
        viewer: &Viewer,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Result<StatsTable, Refused> {
        stats::check_period(viewer, from, to, today)?;
        let table = if viewer.is_secretariat() {
            self.read(move |conn| stats::table(conn, from, to)).await?
        } else {
            self.read(move |conn| stats::published_table(conn, from, to))
                .await?
        };
        Ok(table)
    }
}

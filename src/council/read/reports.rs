//! Reports as one viewer sees them.

use super::{ReadPath, Result, Viewer};
use crate::council::ReportView;
use crate::model::{Origin, ReportId};
use crate::store;

impl ReadPath {
    /// One report in full; `None` when it does not exist or the viewer may not see it.
    pub async fn report(&self, viewer: &Viewer, id: ReportId) -> Result<Option<ReportView>> {
        let campaign = self.campaign_set().of_report(id.0).map(|c| c.id);
        let viewer = viewer.clone();
        self.read(move |conn| {
            let Some(report) = store::reports::get(conn, id.0)? else {
                return Ok(None);
            };
            let released = store::releases::is_released(conn, id.0)?;
            let Some(mut view) = viewer.report_view(&report, released, campaign) else {
                return Ok(None);
            };
            if viewer.is_secretariat()
                && let Origin::Submission { member } = &report.origin
            {
                view.provider_status = store::members::status(conn, member)?;
            }
            Ok(Some(view))
        })
        .await
    }
}

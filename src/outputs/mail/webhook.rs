//! Alert webhooks: each alert batch POSTed as JSON to the configured URLs, for the
//! webhooks' audience and signed.
//!
//! A webhook is nobody in particular — a chat channel, a ticket queue — so it is shown the
//! batch as the audience `Viewer::Audience { ceiling: alerts.webhook_max_tlp }` sees it
//! (released material without sharing scope, TLP:GREEN and CLEAR by default), through the
//! same read path as every mail, and only campaigns that audience sees whole
//! ([`crate::council::read::AlertBatch::view`]). A batch with nothing for the audience is not
//! posted at all: an empty POST would tell the receiver that hidden activity exists.
//!
//! The body carries campaign ids, their TLP, reason kinds and console links only — no
//! report, observable, sector or provider. It is signed with HMAC-SHA256 under a secret read
//! from the environment or a credentials file (`X-Musubi-Signature: sha256=<hex>`), so the
//! receiver can reject forgeries; unsigned bodies never go out. Redirects are not followed,
//! so a signed body goes to the configured URL and nowhere else.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::MailError;
use super::alert::{Batch, Reason};
use crate::config::Config;
use crate::council::Viewer;
use crate::council::read::AlertBatch;
use crate::model::MemberId;

/// The signature header: `sha256=` and the hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Musubi-Signature";

#[derive(Serialize)]
struct WebhookCampaign<'a> {
    id: String,
    tlp: &'static str,
    reasons: &'a [Reason],
    link: String,
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON body of a batch for the webhooks' audience; None when that audience may see
/// none of it.
pub fn body(
    config: &Config,
    seen: &AlertBatch,
    batch: &Batch,
    now: DateTime<Utc>,
) -> Option<Vec<u8>> {
    let audience = Viewer::Audience {
        ceiling: config.mail.alerts.webhook_max_tlp,
    };
    let campaigns: Vec<WebhookCampaign> = batch
        .iter()
        .filter_map(|(id, reasons)| {
            let view = seen.view(&audience, *id)?;
            // The id as the audience is shown it (opaque: `council::read::ids`).
            let shown = view.id;
            Some(WebhookCampaign {
                id: shown.to_string(),
                tlp: view.tlp.label(),
                reasons,
                link: format!("{}/console/campaigns/{shown}", config.public_url),
            })
        })
        .collect();
    if campaigns.is_empty() {
        return None;
    }
    let payload = serde_json::json!({ "at": now, "campaigns": campaigns });
    serde_json::to_vec(&payload).ok()
}

/// How a webhook is named in the batch's delivery rows (`mail_deliveries`): a digest of its
/// URL (which may carry a token), never the URL.
pub fn delivery_name(url: &url::Url) -> MemberId {
    use sha2::Digest;
    let h = Sha256::digest(url.as_str().as_bytes());
    MemberId(format!("webhook.{}", hex::encode(&h[..8])))
}

/// POSTs the batch to every webhook not in `served` (by [`delivery_name`]); returns the
/// names of those that accepted it, for the caller to record, so that a batch resumed by
/// another leader is not posted twice. Failures are logged (host only: a webhook URL may
/// carry a token in its path or query) and not retried: the mail is the alert of record.
pub async fn post(
    config: &Config,
    seen: &AlertBatch,
    batch: &Batch,
    now: DateTime<Utc>,
    served: &HashSet<MemberId>,
) -> Vec<MemberId> {
    let cfg = &config.mail.alerts;
    if cfg
        .webhooks
        .iter()
        .all(|u| served.contains(&delivery_name(u)))
    {
        return Vec::new();
    }
    let Some(body) = body(config, seen, batch, now) else {
        tracing::debug!("Nothing in the alert batch for the webhooks' audience.");
        return Vec::new();
    };
    let secret = match cfg
        .webhook_secret
        .as_ref()
        .ok_or_else(|| "no webhook_secret_env or webhook_secret_file".to_string())
        .and_then(|s| s.read())
    {
        Ok(s) => s,
        Err(e) => {
            let e = MailError::WebhookSecret(e);
            tracing::error!(error = %e, "Alert webhooks not sent: they are never sent unsigned.");
            return Vec::new();
        }
    };
    let sig = signature(secret.as_bytes(), &body);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the webhook client.");
            return Vec::new();
        }
    };
    let mut accepted = Vec::new();
    for url in &cfg.webhooks {
        let name = delivery_name(url);
        if served.contains(&name) {
            continue;
        }
        let host = url.host_str().unwrap_or("");
        let res = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &sig)
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => accepted.push(name),
            Ok(r) => tracing::warn!(
                status = r.status().as_u16(),
                host,
                "Alert webhook refused the alert."
            ),
            Err(e) => {
                // reqwest's error text carries the URL; log its kind and the host only.
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                tracing::warn!(error = kind, host, "Alert webhook failed.");
            }
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

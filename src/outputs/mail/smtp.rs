//! The mailer: one pooled SMTP transport on tokio, retries with exponential backoff.
//!
//! Transient failures (connection refused, 4xx replies, timeouts) are retried
//! `retry_attempts` times, doubling the pause; the caller keeps its window open so that the
//! next run tries again. Permanent ones (5xx) fail at once as [`MailError::Rejected`]:
//! retrying cannot help, so the caller records the refusal for that recipient and goes on
//! with the others. Both are counted in [`MailStats`].

use std::sync::Arc;

use chrono::Utc;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{MailError, MailStats};
use crate::config::mail::{SmtpConfig, SmtpSecurity};

/// Sends messages; cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    config: SmtpConfig,
    stats: Arc<MailStats>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .finish()
    }
}

fn password(config: &SmtpConfig) -> Result<Option<String>, MailError> {
    if let Some(var) = &config.password_env {
        return std::env::var(var)
            .map(Some)
            .map_err(|e| MailError::Password {
                what: format!("environment variable {var}"),
                detail: e.to_string(),
            });
    }
    if let Some(path) = &config.password_file {
        return std::fs::read_to_string(path)
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| MailError::Password {
                what: path.display().to_string(),
                detail: e.to_string(),
            });
    }
    Ok(None)
}

impl Mailer {
    /// Builds the transport (reads the password now; no connection is made yet).
    ///
    /// Must be called inside the tokio runtime: the connection pool starts its reaper task
    /// when it is built, and outside a runtime lettre panics ("no reactor running"), which
    /// is how `musubi digest send` used to abort.
    pub fn new(config: &SmtpConfig, stats: Arc<MailStats>) -> Result<Mailer, MailError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(MailError::NoRuntime);
        }
        let smtp = |e: lettre::transport::smtp::Error| MailError::Smtp(e.to_string());
        let tls = || TlsParameters::new(config.host.clone()).map_err(smtp);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(config.timeout));
        builder = match config.security {
            SmtpSecurity::None => builder.tls(Tls::None),
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
        };
        if let (Some(user), Some(pass)) = (&config.user, password(config)?) {
            builder = builder.credentials(Credentials::new(user.clone(), pass));
        }
        let from = config.from.parse().map_err(|e| MailError::Address {
            whose: "smtp.from".into(),
            address: config.from.clone(),
            detail: format!("{e}"),
        })?;
        Ok(Mailer {
            transport: builder.build(),
            from,
            config: config.clone(),
            stats,
        })
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    pub fn stats(&self) -> &Arc<MailStats> {
        &self.stats
    }

    /// The domain of Message-IDs: the sender's domain.
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }

    /// Sends one message, retrying transient failures with backoff. `context` names the
    /// batch in logs (`digest daily`, `alert`), never the recipient.
    pub async fn send(&self, message: Message, context: &str) -> Result<(), MailError> {
        let mut pause = self.config.retry_backoff;
        let mut attempt = 1;
        loop {
            match self.attempt(message.clone()).await {
                Ok(()) => {
                    self.stats.record_sent(Utc::now());
                    return Ok(());
                }
                Err((error, permanent)) if !permanent && attempt < self.config.retry_attempts => {
                    tracing::warn!(error = %error, context, attempt, retry_in_ms = pause.as_millis() as u64, "Sending mail failed; retrying.");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                Err((error, permanent)) => {
                    self.stats.record_failure(Utc::now(), &error);
                    if permanent {
                        tracing::error!(error = %error, context, "The SMTP server refused the message for good.");
                        return Err(MailError::Rejected(error));
                    }
                    tracing::error!(error = %error, context, attempts = attempt, "Sending mail failed; giving up for now.");
                    return Err(MailError::Smtp(error));
                }
            }
        }
    }

    /// One attempt: the error text and whether it is permanent (5xx).
    ///
    /// On tokio, lettre bounds only the TCP connect by its timeout: a server that accepts and
    /// then never answers (or stops answering mid-exchange) would hold the mail task forever.
    /// So the whole exchange of one message is bounded by the configured timeout too.
    async fn attempt(&self, message: Message) -> Result<(), (String, bool)> {
        match tokio::time::timeout(self.config.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err((e.to_string(), e.is_permanent())),
            Err(_) => Err((
                format!(
                    "timed out: {}:{} did not complete the exchange within {}s",
                    self.config.host,
                    self.config.port,
                    self.config.timeout.as_secs_f64()
                ),
                false,
            )),
        }
    }
}

//! `musubi digest ...`: what a member would receive from a digest, or sending one now.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Subcommand;

use musubi::config::Config;
use musubi::outputs::mail::{MailError, Mailer, digest};

use super::Projections;

#[derive(Subcommand)]
pub enum DigestCommand {
    /// Print what a member would receive from a digest now.
    Preview {
        name: String,
        /// The recipient (id or exact name); default: every recipient's subject line.
        #[arg(long = "as", value_name = "MEMBER")]
        member: Option<String>,
        /// Show the HTML part instead of the text part.
        #[arg(long)]
        html: bool,
        /// Print one JSON object: per recipient, active, subject, text and HTML parts.
        #[arg(long)]
        json: bool,
    },
    /// Send a digest now (the window since its last completed run).
    Send {
        name: String,
        /// Print the counts (sent, already sent, nothing to send, refused) as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &Config, data_dir: &Path, cmd: DigestCommand) -> Result<()> {
    let name = match &cmd {
        DigestCommand::Preview { name, .. } | DigestCommand::Send { name, .. } => name.clone(),
    };
    let d = config
        .mail
        .digest(&name)
        .ok_or_else(|| MailError::UnknownDigest(name.clone()))?;
    let p = Projections::open(config, data_dir, false)?;
    let read = &p.read;
    let book = p.store.mail();
    let now = chrono::Utc::now();
    // Everything below runs inside the runtime: the mailer's connection pool starts a task
    // when it is built, and the read path reads on the blocking pool.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match cmd {
            DigestCommand::Preview {
                member, html, json, ..
            } => {
                let members = match member {
                    Some(who) => vec![
                        read.mail_member(&who)
                            .await?
                            .with_context(|| format!("no member with id or name {who:?}"))?,
                    ],
                    None => {
                        let mut out = Vec::new();
                        for r in digest::recipients(read, &d.audience).await? {
                            out.extend(read.mail_member(&r.member.0).await?);
                        }
                        out
                    }
                };
                let one = members.len() == 1;
                if json {
                    let mut rows = Vec::new();
                    for m in &members {
                        let r = if m.active {
                            digest::preview(read, &book, config, d, m, now).await?
                        } else {
                            None
                        };
                        rows.push(serde_json::json!({
                            "member": m.member,
                            "active": m.active,
                            "subject": r.as_ref().map(|r| &r.subject),
                            "text": r.as_ref().map(|r| &r.text),
                            "html": r.as_ref().map(|r| &r.html),
                        }));
                    }
                    super::print_json(&serde_json::json!({ "digest": name, "recipients": rows }))?;
                    return anyhow::Ok(());
                }
                for m in &members {
                    if !m.active {
                        println!("{}: not an active member; receives no mail", m.member);
                        continue;
                    }
                    match digest::preview(read, &book, config, d, m, now).await? {
                        None => println!("{}: nothing to send", m.member),
                        Some(r) if one => {
                            println!("Subject: {}\n", r.subject);
                            println!("{}", if html { &r.html } else { &r.text });
                        }
                        Some(r) => println!("{}: {}", m.member, r.subject),
                    }
                }
            }
            DigestCommand::Send { json, .. } => {
                let smtp = config.mail.smtp.as_ref().ok_or(MailError::NotConfigured)?;
                let mailer = Mailer::new(smtp, Default::default())?;
                let out = digest::run(read, &book, config, &mailer, d, digest::RunOptions::at(now))
                    .await?;
                if json {
                    super::print_json(&serde_json::json!({
                        "digest": name,
                        "sent": out.sent,
                        "already_sent": out.already_sent,
                        "nothing_to_send": out.empty,
                        "refused": out.rejected,
                    }))?;
                } else {
                    println!(
                        "digest {name}: sent {}, already sent {}, nothing to send {}, refused {}",
                        out.sent, out.already_sent, out.empty, out.rejected
                    );
                }
            }
        }
        anyhow::Ok(())
    })?;
    drop(runtime);
    drop(book);
    p.close();
    Ok(())
}

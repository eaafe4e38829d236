//! `musubi member ...`: the council's membership (written through `council::commands`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use musubi::config::Config;
use musubi::council::commands;
use musubi::model::{Category, Member, MemberClass, Sector};
use musubi::store;

use super::{block_on, operator, print_json, store_read_path};

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Add a member and print its token (shown once; only a hash is stored).
    Add {
        name: String,
        /// Sector code, for critical-infrastructure members.
        #[arg(long)]
        sector: Option<Sector>,
        /// class1, class2, general or secretariat.
        #[arg(long)]
        class: MemberClass,
        /// Category (default: critical_infrastructure with a sector, else other).
        #[arg(long)]
        category: Option<Category>,
    },
    /// Import the council roster (roster-2020-06-05.json format); classes by the default rule.
    Import { file: PathBuf },
    /// Replace a member's tokens by a new one and print it (shown once).
    Token { member: String },
    /// Move a member along its life cycle: approved, suspended, expelled.
    Status {
        member: String,
        status: String,
        #[arg(long, default_value = "")]
        note: String,
        #[arg(long, env = "MUSUBI_ANALYST", default_value = "secretariat")]
        actor: String,
    },
    /// List members.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a member's mail address (and language) for digests and alerts.
    Contact {
        /// Member id or exact name.
        member: String,
        #[arg(long)]
        email: String,
        /// ja or en.
        #[arg(long, default_value = "ja")]
        lang: musubi::config::mail::Language,
    },
}

pub fn run(config: &Config, data_dir: &Path, cmd: MemberCommand) -> Result<()> {
    let store = musubi::daemon::open_store(config, data_dir)?;
    match cmd {
        MemberCommand::Add {
            name,
            sector,
            class,
            category,
        } => {
            if sector.is_some() && category.is_some_and(|c| c != Category::CriticalInfrastructure) {
                bail!("--sector applies only to critical_infrastructure members");
            }
            let (id, token) = store
                .writer()
                .run_blocking(commands::add_member(name, class, sector, category))?;
            println!("member {id} added");
            println!("token (shown once, store it safely): {token}");
        }
        MemberCommand::Import { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let entries = musubi::council::roster::parse(&bytes)
                .with_context(|| format!("{}", file.display()))?;
            let summary = store
                .writer()
                .run_blocking(commands::import_roster(entries))?;
            println!(
                "roster imported: {} added, {} updated, {} unchanged",
                summary.added, summary.updated, summary.unchanged
            );
        }
        MemberCommand::Token { member } => {
            let (_, token) = store.writer().run_blocking(commands::rotate_token(
                member,
                "cli-operator".into(),
                chrono::Utc::now(),
            ))?;
            println!("token (shown once, store it safely): {token}");
        }
        MemberCommand::Status {
            member,
            status,
            note,
            actor,
        } => {
            let to: store::members::MemberStatus =
                status.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let id = store.writer().run_blocking(commands::set_member_status(
                member,
                to,
                actor,
                note,
                chrono::Utc::now(),
            ))?;
            println!("member {id} is now {}", to.as_str());
        }
        MemberCommand::List { json } => {
            let read = store_read_path(&store);
            let members: Vec<Member> = block_on(read.members(&operator()))?
                .into_iter()
                .map(|(m, _)| m)
                .collect();
            if json {
                print_json(&serde_json::json!({ "members": members }))?;
            } else {
                for m in &members {
                    println!(
                        "{:<14} {:<12} {:<24} {:<12} {}",
                        m.id.0,
                        m.class.as_str(),
                        m.category.as_str(),
                        m.sector.map(|s| s.as_str()).unwrap_or("-"),
                        m.name
                    );
                }
                println!("{} member(s)", members.len());
            }
        }
        MemberCommand::Contact {
            member,
            email,
            lang,
        } => {
            email
                .parse::<lettre::Address>()
                .with_context(|| format!("{email:?} is not a mail address"))?;
            let read = store_read_path(&store);
            let m = block_on(read.member(&operator(), &member))?
                .with_context(|| format!("no member with id or name {member:?}"))?;
            store.mail().set_contact_blocking(store::mail::Contact {
                member: m.id.clone(),
                email,
                language: lang.as_str().to_string(),
            })?;
            println!("member {}: contact set", m.id);
        }
    }
    store.close();
    Ok(())
}

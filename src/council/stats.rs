//! The council's campaign statistics (活用件数), as it publishes them.
//!
//! Counted by attack activity — campaign — not by submission: reports of one campaign from
//! several members count once (the council's note 1). A campaign counts in the period in
//! which its first member submission arrived; its disposition is the last one recorded by
//! the end of the period, and a campaign without one is under analysis. Campaigns made only
//! of public feed items were never brought to the council and do not count.
//!
//! # What a member may see
//! The secretariat may ask for any period and sees every campaign brought in ([`table`]).
//! A member (of any class) receives the council's *published* statistics and nothing finer
//! ([`check_period`], [`published_table`]):
//! - only closed periods at the council's own granularity: whole calendar months (a quarter
//!   or a year is a run of whole months), the last of which has ended (UTC);
//! - only campaigns the secretariat has decided on — some disposition recorded (including
//!   an explicit `under-analysis`) by the end of the period. Campaigns the correlator made
//!   but nobody has brought to the table yet are not counted.
//!
//! So a member's figures for a month are fixed once the month is over, move only with the
//! secretariat's decisions, and say nothing about when, or whether, any hidden report
//! arrived on a given day.

use std::collections::BTreeMap;

use crate::store::db::{Conn, params};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use super::policy::Viewer;
use super::read::Refused;
use super::review;
use crate::model::{CampaignId, Disposition, Language};
use crate::store;

/// The language of a rendered table: the model's one language type, under the name the
/// CLI (`musubi stats --lang`) uses.
pub use crate::model::Language as Lang;

/// The output format of a rendered table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Md,
    Json,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "md" | "markdown" => Ok(Format::Md),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(format!("unknown format {s:?} (expected md, json or csv)")),
        }
    }
}

/// Which campaigns a table counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Counted {
    /// Every campaign brought in (the secretariat's view).
    AllCampaigns,
    /// Campaigns with a recorded disposition only (the published view members receive).
    DecidedCampaigns,
}

/// Campaign counts of one period, per disposition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsTable {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub counted: Counted,
    /// Campaigns per current disposition; `under-analysis` includes undecided campaigns.
    pub by_disposition: BTreeMap<&'static str, u64>,
    /// How long the period's campaigns took to be shared and decided: the secretariat's
    /// table only (`None` in the published one, whose undecided campaigns are not counted).
    pub time_to_share: Option<TimeToShare>,
}

impl StatsTable {
    /// Counts the given campaigns' dispositions (`None` = not decided yet = under analysis).
    pub fn tally(
        from: NaiveDate,
        to: NaiveDate,
        dispositions: impl IntoIterator<Item = Option<Disposition>>,
    ) -> StatsTable {
        let mut by_disposition: BTreeMap<&'static str, u64> =
            Disposition::ALL.iter().map(|d| (d.as_str(), 0)).collect();
        for d in dispositions {
            *by_disposition
                .entry(d.unwrap_or(Disposition::UnderAnalysis).as_str())
                .or_insert(0) += 1;
        }
        StatsTable {
            from,
            to,
            counted: Counted::AllCampaigns,
            by_disposition,
            time_to_share: None,
        }
    }

    pub fn count(&self, d: Disposition) -> u64 {
        self.by_disposition.get(d.as_str()).copied().unwrap_or(0)
    }

    fn sum(&self, ds: &[Disposition]) -> u64 {
        ds.iter().map(|d| self.count(*d)).sum()
    }

    pub fn brought_in(&self) -> u64 {
        self.by_disposition.values().sum()
    }

    pub fn shared(&self) -> u64 {
        self.sum(&[Disposition::SharedPublic, Disposition::SharedLimited])
    }

    pub fn low_need(&self) -> u64 {
        self.sum(&[
            Disposition::LowNeedKnown,
            Disposition::LowNeedTransient,
            Disposition::LowNeedOther,
        ])
    }

    pub fn abandoned(&self) -> u64 {
        self.sum(&[
            Disposition::AbandonedNoConsent,
            Disposition::AbandonedInsufficientSamples,
            Disposition::AbandonedOther,
        ])
    }

    pub fn not_shared(&self) -> u64 {
        self.brought_in() - self.shared()
    }

    /// The rows of the council's table, in its order: (key, Japanese number, English number,
    /// count).
    fn rows(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
        use Disposition::*;
        vec![
            ("brought_in", "", "", self.brought_in()),
            ("shared", "", "", self.shared()),
            ("not_shared", "", "", self.not_shared()),
            ("low_need", "(1)", "(1)", self.low_need()),
            (
                "low_need_known",
                "(1)(ア)",
                "(1)(a)",
                self.count(LowNeedKnown),
            ),
            (
                "low_need_transient",
                "(1)(イ)",
                "(1)(b)",
                self.count(LowNeedTransient),
            ),
            (
                "low_need_other",
                "(1)(ウ)",
                "(1)(c)",
                self.count(LowNeedOther),
            ),
            ("abandoned", "(2)", "(2)", self.abandoned()),
            (
                "abandoned_no_consent",
                "(2)(ア)",
                "(2)(a)",
                self.count(AbandonedNoConsent),
            ),
            (
                "abandoned_insufficient_samples",
                "(2)(イ)",
                "(2)(b)",
                self.count(AbandonedInsufficientSamples),
            ),
            (
                "abandoned_other",
                "(2)(ウ)",
                "(2)(c)",
                self.count(AbandonedOther),
            ),
            ("under_analysis", "(3)", "(3)", self.count(UnderAnalysis)),
            (
                "not_shared_total",
                "",
                "",
                self.low_need() + self.abandoned() + self.count(UnderAnalysis),
            ),
        ]
    }
}

/// The row label in the council's own wording (Japanese) or its English rendering.
fn label(key: &str, lang: Language, to: NaiveDate) -> String {
    let (ja, en) = match key {
        "brought_in" => (
            "協議会に持ち込まれた攻撃活動の件数",
            "campaigns brought to the council",
        ),
        "shared" => (
            "対策情報等を広く公開し、又は一定の範囲に限定して共有するに至ったもの",
            "countermeasure info published widely or shared within a limited scope",
        ),
        "not_shared" => (
            "対策情報等を広く公開等するに至らなかったもの",
            "not published/shared",
        ),
        "low_need" => (
            "協議会における分析の結果、共有の必要性が低いと判断したもの",
            "judged low need to share",
        ),
        "low_need_known" => (
            "協議会における分析の結果、既知の脅威であるなど、第三者にとって目新しい情報はないと判断したもの",
            "known threat, nothing new for third parties",
        ),
        "low_need_transient" => (
            "協議会における分析の結果、一過性の脅威とみられるなど、既に脅威度が低下していると判断したもの",
            "transient, threat level already declined",
        ),
        "low_need_other" => (
            "上記(ア)・(イ)以外の理由により、共有の必要性が低いと判断したもの",
            "low need, other reasons",
        ),
        "abandoned" => (
            "共有の必要性が低いとは判断していないが、共有を断念したもの",
            "not judged low need, but sharing abandoned",
        ),
        "abandoned_no_consent" => (
            "共有することについて情報提供者等の了解が得られず、共有を断念したもの",
            "abandoned: no consent from the information provider",
        ),
        "abandoned_insufficient_samples" => (
            "サンプル不足等により分析が行き詰まり、共有を断念したもの",
            "abandoned: analysis stalled (e.g. insufficient samples)",
        ),
        "abandoned_other" => (
            "上記(ア)・(イ)以外の理由により、共有を断念したもの",
            "abandoned: other reasons",
        ),
        "under_analysis" => {
            return match lang {
                Language::Ja => format!("分析作業中のもの ({}時点)", wareki(to)),
                Language::En => format!("still under analysis (as of {to})"),
            };
        }
        "not_shared_total" => ("(合計)", "not published, total"),
        _ => ("", ""),
    };
    match lang {
        Language::Ja => ja.to_string(),
        Language::En => en.to_string(),
    }
}

/// A date in the Japanese calendar as the council writes it (令和2年3月31日, 令和元年5月17日).
pub fn wareki(d: NaiveDate) -> String {
    let (era, start) = if d >= NaiveDate::from_ymd_opt(2019, 5, 1).expect("valid date") {
        ("令和", 2019)
    } else if d >= NaiveDate::from_ymd_opt(1989, 1, 8).expect("valid date") {
        ("平成", 1989)
    } else {
        return format!("{}年{}月{}日", d.year(), d.month(), d.day());
    };
    let n = d.year() - start + 1;
    let year = if n == 1 {
        "元".to_string()
    } else {
        n.to_string()
    };
    format!("{era}{year}年{}月{}日", d.month(), d.day())
}

/// Renders the table. Markdown gives the council's table with a heading and the counting
/// note; JSON and CSV give the same rows for machines.
pub fn render(table: &StatsTable, lang: Language, format: Format) -> String {
    let rows: Vec<(&str, &str, String, u64)> = table
        .rows()
        .into_iter()
        .map(|(key, ja, en, n)| {
            let number = if lang == Language::Ja { ja } else { en };
            (key, number, label(key, lang, table.to), n)
        })
        .collect();
    match format {
        Format::Md => {
            let mut out = String::new();
            match lang {
                Language::Ja => {
                    out.push_str(&format!(
                        "## 協議会の活用件数 ({}時点)\n\n",
                        wareki(table.to)
                    ));
                    out.push_str(&format!(
                        "対象期間: {}〜{}。計上単位は攻撃活動の数 (同一の攻撃活動に関する複数の構成員からの情報提供は1件として計上)。\n\n",
                        wareki(table.from),
                        wareki(table.to)
                    ));
                    out.push_str("| 項番 | 項目 | 件数 |\n| --- | --- | ---: |\n");
                }
                Language::En => {
                    out.push_str(&format!(
                        "## Campaigns brought to the council (as of {})\n\n",
                        table.to
                    ));
                    out.push_str(&format!(
                        "Period: {} to {}. Counted by attack activity (campaign): reports of one campaign from several members count once.\n\n",
                        table.from, table.to
                    ));
                    out.push_str("| No. | Item | Count |\n| --- | --- | ---: |\n");
                }
            }
            for (_, number, label, n) in &rows {
                out.push_str(&format!("| {number} | {label} | {n} |\n"));
            }
            if let Some(t) = &table.time_to_share {
                out.push('\n');
                out.push_str(&t.render_md(lang));
            }
            out
        }
        Format::Json => {
            let rows: Vec<_> = rows
                .iter()
                .map(|(key, number, label, n)| {
                    serde_json::json!({"key": key, "number": number, "label": label, "count": n})
                })
                .collect();
            let mut value = serde_json::json!({
                "from": table.from.to_string(),
                "to": table.to.to_string(),
                "unit": "campaign",
                "counted": table.counted,
                "rows": rows,
                "by_disposition": table.by_disposition,
            });
            if let Some(t) = &table.time_to_share {
                value["time_to_share"] = serde_json::to_value(t).unwrap_or_default();
            }
            let mut s =
                serde_json::to_string_pretty(&value).expect("a JSON value always serialises");
            s.push('\n');
            s
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let header = ["key", "number", "label", "count"];
            let _ = w.write_record(header);
            for (key, number, label, n) in &rows {
                let _ = w.write_record([*key, *number, label.as_str(), &n.to_string()]);
            }
            let bytes = w.into_inner().unwrap_or_default();
            String::from_utf8(bytes).unwrap_or_default()
        }
    }
}

/// One campaign's way to the council's decision, from stored facts only: when its first
/// member submission arrived, when it was first shared beyond class 1 (class 1 sees new
/// material at once; the rest wait for a release, or for a disposition that shares), and
/// when the secretariat recorded a disposition other than `under-analysis`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShareTimes {
    pub campaign: CampaignId,
    pub submitted: DateTime<Utc>,
    /// The first release of one of its member reports, or the first `shared-*`
    /// disposition, whichever came first.
    pub shared: Option<DateTime<Utc>>,
    /// The first disposition that decides (anything but `under-analysis`).
    pub decided: Option<DateTime<Utc>>,
}

impl ShareTimes {
    /// Submission to first share.
    pub fn to_share(&self) -> Option<TimeDelta> {
        self.shared.map(|t| t - self.submitted)
    }

    /// Submission to disposition.
    pub fn to_decide(&self) -> Option<TimeDelta> {
        self.decided.map(|t| t - self.submitted)
    }

    /// Still waiting for the council's decision.
    pub fn waiting(&self) -> bool {
        self.decided.is_none()
    }
}

/// Every campaign brought in (a member submission in it) with its [`ShareTimes`], counting
/// releases and dispositions recorded up to `as_of`, oldest submission first. Campaigns
/// whose first submission is after `as_of` are left out.
pub fn share_times(conn: &Conn, as_of: DateTime<Utc>) -> store::Result<Vec<ShareTimes>> {
    let limit = store::ts_string(as_of);
    // Releases of member reports only: a feed item needs no release, and the campaign is
    // the members' material.
    let mut stmt = conn.prepare_cached(
        "SELECT cr.campaign_id, min(r.received_at),
                min(CASE WHEN rr.released_at <= ?1 THEN rr.released_at END)
         FROM campaign_reports cr
         JOIN reports r ON r.seq = cr.seq
         LEFT JOIN released_reports rr ON rr.seq = cr.seq
         WHERE r.origin_kind = 'submission'
         GROUP BY cr.campaign_id
         HAVING min(r.received_at) <= ?1",
    )?;
    let rows = stmt.query_map(params![limit], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, submitted, released) = row?;
        out.push(ShareTimes {
            campaign: id.parse().map_err(store::StoreError::Corrupt)?,
            submitted: store::parse_ts_string(&submitted)?,
            shared: released
                .as_deref()
                .map(store::parse_ts_string)
                .transpose()?,
            decided: None,
        });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT campaign_id, disposition, at FROM dispositions WHERE at <= ?1 ORDER BY at, id",
    )?;
    let rows = stmt.query_map(params![limit], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    // Per campaign: its first shared disposition and its first deciding one.
    type FirstTimes = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let mut decisions: BTreeMap<CampaignId, FirstTimes> = BTreeMap::new();
    for row in rows {
        let (id, d, at) = row?;
        let id: CampaignId = id.parse().map_err(store::StoreError::Corrupt)?;
        let d: Disposition = d.parse().map_err(store::StoreError::Corrupt)?;
        let at = store::parse_ts_string(&at)?;
        let (shared, decided) = decisions.entry(id).or_default();
        if matches!(d, Disposition::SharedPublic | Disposition::SharedLimited) {
            shared.get_or_insert(at);
        }
        if d != Disposition::UnderAnalysis {
            decided.get_or_insert(at);
        }
    }
    for t in &mut out {
        if let Some((shared, decided)) = decisions.get(&t.campaign) {
            t.shared = match (t.shared, *shared) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            t.decided = *decided;
        }
    }
    out.sort_by_key(|t| (t.submitted, t.campaign));
    Ok(out)
}

/// The median and 90th percentile of some durations, in seconds (nearest rank: the
/// smallest duration with at least half, or nine tenths, of them at or below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub median_seconds: i64,
    pub p90_seconds: i64,
}

impl Spread {
    pub fn of(durations: impl IntoIterator<Item = TimeDelta>) -> Option<Spread> {
        let mut secs: Vec<i64> = durations.into_iter().map(|d| d.num_seconds()).collect();
        if secs.is_empty() {
            return None;
        }
        secs.sort_unstable();
        let rank = |p: usize| secs[(secs.len() * p).div_ceil(100).max(1) - 1];
        Some(Spread {
            median_seconds: rank(50),
            p90_seconds: rank(90),
        })
    }
}

/// Time-to-share over the campaigns brought in during a window: how many, how many are
/// shared and decided by the window's end, how many still wait, and the spread of the
/// times of those that got there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeToShare {
    pub campaigns: usize,
    pub shared: usize,
    pub decided: usize,
    pub waiting: usize,
    /// First member submission to first share beyond class 1.
    pub to_share: Option<Spread>,
    /// First member submission to disposition.
    pub to_decide: Option<Spread>,
}

impl TimeToShare {
    /// Over the campaigns of `times` first submitted in `[from, to)`.
    pub fn of(times: &[ShareTimes], from: DateTime<Utc>, to: DateTime<Utc>) -> TimeToShare {
        let within: Vec<&ShareTimes> = times
            .iter()
            .filter(|t| t.submitted >= from && t.submitted < to)
            .collect();
        TimeToShare {
            campaigns: within.len(),
            shared: within.iter().filter(|t| t.shared.is_some()).count(),
            decided: within.iter().filter(|t| t.decided.is_some()).count(),
            waiting: within.iter().filter(|t| t.waiting()).count(),
            to_share: Spread::of(within.iter().filter_map(|t| t.to_share())),
            to_decide: Spread::of(within.iter().filter_map(|t| t.to_decide())),
        }
    }

    /// The Markdown section `musubi stats` adds below the council's table.
    pub fn render_md(&self, lang: Language) -> String {
        let cell = |s: Option<Spread>, pick: fn(&Spread) -> i64| {
            s.map(|s| span(pick(&s), lang))
                .unwrap_or_else(|| "-".to_string())
        };
        let row = |label: &str, s: Option<Spread>, n: usize| {
            format!(
                "| {label} | {} | {} | {n} |\n",
                cell(s, |s| s.median_seconds),
                cell(s, |s| s.p90_seconds)
            )
        };
        let mut out = String::new();
        match lang {
            Language::Ja => {
                out.push_str("### 共有までの時間\n\n");
                out.push_str("最初の構成員からの情報提供を起点とする (第1類構成員以外への最初の共有は、公開の承認又は共有に至った対応の記録)。\n\n");
                out.push_str(
                    "| 区間 | 中央値 | 90パーセンタイル | 件数 |\n| --- | ---: | ---: | ---: |\n",
                );
                out.push_str(&row(
                    "情報提供 → 第1類以外への共有",
                    self.to_share,
                    self.shared,
                ));
                out.push_str(&row("情報提供 → 対応の決定", self.to_decide, self.decided));
                out.push_str(&format!("\n対応未決定: {} 件\n", self.waiting));
            }
            Language::En => {
                out.push_str("### Time to share\n\n");
                out.push_str("From the first member submission (the first share beyond class 1 is a release, or a disposition that shares).\n\n");
                out.push_str("| Interval | Median | 90th percentile | Campaigns |\n| --- | ---: | ---: | ---: |\n");
                out.push_str(&row(
                    "submission to share beyond class 1",
                    self.to_share,
                    self.shared,
                ));
                out.push_str(&row(
                    "submission to disposition",
                    self.to_decide,
                    self.decided,
                ));
                out.push_str(&format!("\nAwaiting disposition: {}\n", self.waiting));
            }
        }
        out
    }
}

/// A duration as the council reads it: hours under two days, days from there.
pub fn span(seconds: i64, lang: Language) -> String {
    let hours = seconds as f64 / 3600.0;
    match (hours < 48.0, lang) {
        (true, Language::Ja) => format!("{hours:.1}時間"),
        (true, Language::En) => format!("{hours:.1} h"),
        (false, Language::Ja) => format!("{:.1}日", hours / 24.0),
        (false, Language::En) => format!("{:.1} days", hours / 24.0),
    }
}

/// The campaigns waiting longest for a disposition, oldest submission first (at most `n`).
pub fn waiting_longest(times: &[ShareTimes], n: usize) -> Vec<ShareTimes> {
    times
        .iter()
        .filter(|t| t.waiting())
        .take(n)
        .cloned()
        .collect()
}

/// The campaigns brought in between `from` and `to` (inclusive dates, UTC), with their
/// first member submission.
pub fn brought_in(conn: &Conn, from: NaiveDate, to: NaiveDate) -> store::Result<Vec<CampaignId>> {
    let start = from
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let end = (to + TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let mut stmt = conn.prepare_cached(
        "SELECT cr.campaign_id, min(r.received_at) AS first FROM campaign_reports cr
         JOIN reports r ON r.seq = cr.seq
         WHERE r.origin_kind = 'submission'
         GROUP BY cr.campaign_id
         HAVING first >= ?1 AND first < ?2
         ORDER BY cr.campaign_id",
    )?;
    let rows = stmt.query_map(
        params![store::ts_string(start), store::ts_string(end)],
        |r| r.get::<_, String>(0),
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.parse().map_err(store::StoreError::Corrupt)?);
    }
    Ok(out)
}

/// The statistics of a period from the store.
pub fn table(conn: &Conn, from: NaiveDate, to: NaiveDate) -> store::Result<StatsTable> {
    let current = review::current_all_as_of(conn, Some(end_of(to)))?;
    let campaigns = brought_in(conn, from, to)?;
    let mut t = StatsTable::tally(
        from,
        to,
        campaigns
            .iter()
            .map(|id| current.get(id).map(|d| d.disposition)),
    );
    let times = share_times(conn, end_of(to))?;
    t.time_to_share = Some(TimeToShare::of(
        &times,
        start_of(from),
        end_of(to) + TimeDelta::microseconds(1),
    ));
    Ok(t)
}

/// The start of the first day of a period, in UTC.
fn start_of(from: NaiveDate) -> DateTime<Utc> {
    from.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}

/// The period a viewer may ask for. The secretariat: any (`from <= to`). Anyone else: whole
/// calendar months already over — `from` the first day of a month, `to` the last day of a
/// month before `today` (UTC) — else a refusal naming the field.
pub fn check_period(
    viewer: &Viewer,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Result<(), Refused> {
    if from > to {
        return Err(Refused::invalid("from", "is after to"));
    }
    if viewer.is_secretariat() {
        return Ok(());
    }
    if from.day() != 1 {
        return Err(Refused::invalid(
            "from",
            "members receive whole months: give the first day of a month",
        ));
    }
    if to.succ_opt().is_none_or(|next| next.day() != 1) {
        return Err(Refused::invalid(
            "to",
            "members receive whole months: give the last day of a month",
        ));
    }
    if to >= today {
        return Err(Refused::invalid(
            "to",
            "members receive closed periods only: the month must have ended",
        ));
    }
    Ok(())
}

/// The end of the last day of a period (inclusive), in UTC.
fn end_of(to: NaiveDate) -> DateTime<Utc> {
    (to + TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        - TimeDelta::microseconds(1)
}

/// The published statistics of a period: like [`table`], but counting only the campaigns
/// decided (some disposition recorded) by the end of the period.
pub fn published_table(conn: &Conn, from: NaiveDate, to: NaiveDate) -> store::Result<StatsTable> {
    let current = review::current_all_as_of(conn, Some(end_of(to)))?;
    let campaigns = brought_in(conn, from, to)?;
    let mut t = StatsTable::tally(
        from,
        to,
        campaigns
            .iter()
            .filter_map(|id| current.get(id).map(|d| Some(d.disposition))),
    );
    t.counted = Counted::DecidedCampaigns;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::correlate::CampaignEvent;
    use crate::council::roster;
    use crate::model::{MemberId, Origin, ReportDraft, Tlp};

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
    }

    fn cid(year: u16, number: u32) -> CampaignId {
        CampaignId { year, number }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Reports `n` reports (from different members) into campaign `id`, first at `when`.
    fn bring(conn: &Conn, id: CampaignId, members: &[&str], when: DateTime<Utc>) {
        let mut seqs = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let mut draft = ReportDraft::new(format!("{id} report {i}"), Tlp::Amber);
            draft.description = format!("{m} {id}");
            let origin = match m.strip_prefix("feed:") {
                Some(feed) => Origin::FeedItem {
                    feed: feed.to_string(),
                },
                None => Origin::Submission {
                    member: MemberId(m.to_string()),
                },
            };
            let r =
                store::reports::insert(conn, &origin, &draft, when + TimeDelta::hours(i as i64))
                    .unwrap();
            seqs.push(r.id().0);
        }
        store::campaigns::record(
            conn,
            &[
                CampaignEvent::Created { id },
                CampaignEvent::Assigned { id, reports: seqs },
            ],
            when,
        )
        .unwrap();
    }

    /// The council's published figures of 2020-03-31: 46 brought in, 13 shared, 27 low need
    /// (2 known, 25 transient), 0 abandoned, 6 under analysis — counted per campaign.
    fn scenario() -> store::Conn<'static> {
        let conn = store::open_in_memory().unwrap();
        let entries = roster::parse(include_bytes!(
            "../../tests/fixtures/council/roster-2020-06-05.json"
        ))
        .unwrap();
        let members: Vec<_> = entries
            .iter()
            .map(|e| e.to_member(roster::default_class))
            .collect();
        store::members::import_roster(&conn, &members).unwrap();
        let start = at(2019, 5, 27);
        for n in 1..=46u32 {
            let when = start + TimeDelta::days(6 * i64::from(n));
            // The first ten campaigns were reported by two members each (and a feed): they
            // still count once.
            let members: &[&str] = if n <= 10 {
                &["m121", "m140", "feed:kev"]
            } else {
                &["m200"]
            };
            bring(&conn, cid(2019, n), members, when);
        }
        // Brought in after the period, and a campaign of feed items only: neither counts.
        bring(&conn, cid(2020, 1), &["m121"], at(2020, 4, 2));
        bring(&conn, cid(2020, 2), &["feed:kev"], at(2020, 1, 10));
        let decide = |n: u32, d: Disposition, when| {
            review::decide(&conn, cid(2019, n), d, "", "analyst-a", when).unwrap();
        };
        for n in 1..=13 {
            decide(n, Disposition::UnderAnalysis, at(2020, 1, 5));
            decide(
                n,
                if n <= 7 {
                    Disposition::SharedPublic
                } else {
                    Disposition::SharedLimited
                },
                at(2020, 2, 1),
            );
        }
        decide(14, Disposition::LowNeedKnown, at(2020, 3, 1));
        decide(15, Disposition::LowNeedKnown, at(2020, 3, 1));
        for n in 16..=40 {
            decide(n, Disposition::LowNeedTransient, at(2020, 3, 2));
        }
        for n in 41..=43 {
            decide(n, Disposition::UnderAnalysis, at(2020, 3, 3));
        }
        // Decided after the end of the period: still under analysis on 2020-03-31.
        decide(46, Disposition::SharedPublic, at(2020, 4, 10));
        conn
    }

    const JA: &str = "## 協議会の活用件数 (令和2年3月31日時点)

対象期間: 令和元年5月17日〜令和2年3月31日。計上単位は攻撃活動の数 (同一の攻撃活動に関する複数の構成員からの情報提供は1件として計上)。

| 項番 | 項目 | 件数 |
| --- | --- | ---: |
|  | 協議会に持ち込まれた攻撃活動の件数 | 46 |
|  | 対策情報等を広く公開し、又は一定の範囲に限定して共有するに至ったもの | 13 |
|  | 対策情報等を広く公開等するに至らなかったもの | 33 |
| (1) | 協議会における分析の結果、共有の必要性が低いと判断したもの | 27 |
| (1)(ア) | 協議会における分析の結果、既知の脅威であるなど、第三者にとって目新しい情報はないと判断したもの | 2 |
| (1)(イ) | 協議会における分析の結果、一過性の脅威とみられるなど、既に脅威度が低下していると判断したもの | 25 |
| (1)(ウ) | 上記(ア)・(イ)以外の理由により、共有の必要性が低いと判断したもの | 0 |
| (2) | 共有の必要性が低いとは判断していないが、共有を断念したもの | 0 |
| (2)(ア) | 共有することについて情報提供者等の了解が得られず、共有を断念したもの | 0 |
| (2)(イ) | サンプル不足等により分析が行き詰まり、共有を断念したもの | 0 |
| (2)(ウ) | 上記(ア)・(イ)以外の理由により、共有を断念したもの | 0 |
| (3) | 分析作業中のもの (令和2年3月31日時点) | 6 |
|  | (合計) | 33 |
";

    const EN: &str = "## Campaigns brought to the council (as of 2020-03-31)

Period: 2019-05-17 to 2020-03-31. Counted by attack activity (campaign): reports of one campaign from several members count once.

| No. | Item | Count |
| --- | --- | ---: |
|  | campaigns brought to the council | 46 |
|  | countermeasure info published widely or shared within a limited scope | 13 |
|  | not published/shared | 33 |
| (1) | judged low need to share | 27 |
| (1)(a) | known threat, nothing new for third parties | 2 |
| (1)(b) | transient, threat level already declined | 25 |
| (1)(c) | low need, other reasons | 0 |
| (2) | not judged low need, but sharing abandoned | 0 |
| (2)(a) | abandoned: no consent from the information provider | 0 |
| (2)(b) | abandoned: analysis stalled (e.g. insufficient samples) | 0 |
| (2)(c) | abandoned: other reasons | 0 |
| (3) | still under analysis (as of 2020-03-31) | 6 |
|  | not published, total | 33 |
";

    #[test]
    fn reproduces_the_published_figures_of_2020_03_31() {
        let conn = scenario();
        let t = table(&conn, date(2019, 5, 17), date(2020, 3, 31)).unwrap();
        assert_eq!(
            (
                t.brought_in(),
                t.shared(),
                t.low_need(),
                t.abandoned(),
                t.count(Disposition::UnderAnalysis)
            ),
            (46, 13, 27, 0, 6)
        );
        // The council's table as published; the secretariat's copy adds time-to-share below.
        let published_form = StatsTable {
            time_to_share: None,
            ..t.clone()
        };
        assert_eq!(render(&published_form, Language::Ja, Format::Md), JA);
        assert_eq!(render(&published_form, Language::En, Format::Md), EN);
        assert!(render(&t, Language::Ja, Format::Md).starts_with(JA));
        assert!(render(&t, Language::En, Format::Md).contains("### Time to share"));
        let json: serde_json::Value =
            serde_json::from_str(&render(&t, Language::En, Format::Json)).unwrap();
        assert_eq!(json["rows"][0]["count"], 46);
        assert_eq!(json["by_disposition"]["shared-limited"], 6);
        let csv = render(&t, Language::En, Format::Csv);
        assert_eq!(csv.lines().count(), 14);
        assert!(
            csv.contains(
                "low_need_known,(1)(a),\"known threat, nothing new for third parties\",2\n"
            ),
            "{csv}"
        );
        // A week later the late decision counts and the April campaign is brought in.
        let t = table(&conn, date(2019, 5, 17), date(2020, 4, 30)).unwrap();
        assert_eq!(
            (
                t.brought_in(),
                t.shared(),
                t.count(Disposition::UnderAnalysis)
            ),
            (47, 14, 6)
        );
    }

    #[test]
    fn members_get_closed_whole_months_the_secretariat_any_period() {
        let member = Viewer::member(MemberId("m030".into()), crate::model::MemberClass::General);
        let sec = Viewer::member(
            MemberId("sec".into()),
            crate::model::MemberClass::Secretariat,
        );
        let today = date(2020, 4, 15);
        let field = |v: &Viewer, from, to| match check_period(v, from, to, today) {
            Ok(()) => "ok",
            Err(Refused::Invalid { field, .. }) => field,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(field(&member, date(2020, 3, 1), date(2020, 3, 31)), "ok");
        assert_eq!(field(&member, date(2020, 1, 1), date(2020, 3, 31)), "ok");
        assert_eq!(field(&member, date(2020, 2, 1), date(2020, 2, 29)), "ok");
        assert_eq!(field(&member, date(2020, 3, 2), date(2020, 3, 31)), "from");
        assert_eq!(field(&member, date(2020, 3, 1), date(2020, 3, 30)), "to");
        assert_eq!(field(&member, date(2020, 4, 1), date(2020, 4, 30)), "to");
        assert_eq!(field(&member, date(2020, 4, 15), date(2020, 4, 15)), "from");
        assert_eq!(field(&member, date(2020, 4, 1), date(2020, 3, 31)), "from");
        assert_eq!(field(&sec, date(2020, 4, 15), date(2020, 4, 15)), "ok");
        assert_eq!(field(&sec, date(2020, 4, 16), date(2020, 4, 15)), "from");
    }

    #[test]
    fn published_figures_count_decided_campaigns_only() {
        let conn = scenario();
        let all = table(&conn, date(2019, 5, 1), date(2020, 3, 31)).unwrap();
        let published = published_table(&conn, date(2019, 5, 1), date(2020, 3, 31)).unwrap();
        assert_eq!(all.counted, Counted::AllCampaigns);
        assert_eq!(published.counted, Counted::DecidedCampaigns);
        // 46 brought in; 43 decided by 2020-03-31 (44 and 45 never, 46 only in April).
        assert_eq!((all.brought_in(), published.brought_in()), (46, 43));
        assert_eq!(published.shared(), 13);
        assert_eq!(published.low_need(), 27);
        // Explicitly under analysis: 41 to 43.
        assert_eq!(published.count(Disposition::UnderAnalysis), 3);
    }

    /// Four campaigns with whole-hour times: shared by release after 10 h, by a shared
    /// disposition after 30 h (decided then too), decided not to share after 50 h without
    /// sharing, and one still waiting. The figures are those times, by nearest rank.
    #[test]
    fn time_to_share_is_computed_from_releases_and_dispositions() {
        let conn = store::open_in_memory().unwrap();
        for m in ["m1", "m2"] {
            conn.execute(
                "INSERT INTO members (id, name, category, class, created_at) VALUES (?1, ?1, 'critical-infrastructure', 'general', '2026-01-01T00:00:00Z')",
                params![m],
            )
            .unwrap();
        }
        let t0 = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
        let h = TimeDelta::hours;
        bring(&conn, cid(2026, 1), &["m1", "m2"], t0);
        bring(&conn, cid(2026, 2), &["feed:kev", "m1"], t0 + h(24));
        bring(&conn, cid(2026, 3), &["m2"], t0 + h(48));
        bring(&conn, cid(2026, 4), &["m1"], t0 + h(72));
        // A feed-only group counts nowhere.
        bring(&conn, cid(2026, 5), &["feed:kev"], t0);
        store::releases::release_campaign(&conn, cid(2026, 1), "a", t0 + h(10)).unwrap();
        review::decide(
            &conn,
            cid(2026, 1),
            Disposition::UnderAnalysis,
            "",
            "a",
            t0 + h(11),
        )
        .unwrap();
        // Campaign 2's member report came an hour after the feed item.
        review::decide(
            &conn,
            cid(2026, 2),
            Disposition::SharedLimited,
            "",
            "a",
            t0 + h(55),
        )
        .unwrap();
        review::decide(
            &conn,
            cid(2026, 3),
            Disposition::LowNeedTransient,
            "",
            "a",
            t0 + h(98),
        )
        .unwrap();
        let times = share_times(&conn, t0 + h(200)).unwrap();
        let ids: Vec<_> = times.iter().map(|t| t.campaign.number).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        let hours = |d: Option<TimeDelta>| d.map(|d| d.num_hours());
        let got: Vec<_> = times
            .iter()
            .map(|t| (hours(t.to_share()), hours(t.to_decide())))
            .collect();
        assert_eq!(
            got,
            [
                (Some(10), None),
                (Some(30), Some(30)),
                (None, Some(50)),
                (None, None)
            ]
        );
        let summary = TimeToShare::of(&times, t0, t0 + h(200));
        assert_eq!(
            (
                summary.campaigns,
                summary.shared,
                summary.decided,
                summary.waiting
            ),
            (4, 2, 2, 2)
        );
        assert_eq!(
            summary.to_share,
            Some(Spread {
                median_seconds: 10 * 3600,
                p90_seconds: 30 * 3600
            })
        );
        assert_eq!(
            summary.to_decide,
            Some(Spread {
                median_seconds: 30 * 3600,
                p90_seconds: 50 * 3600
            })
        );
        let waiting: Vec<_> = waiting_longest(&times, 5)
            .iter()
            .map(|t| t.campaign.number)
            .collect();
        assert_eq!(waiting, [1, 4]);
        // As of an earlier moment, later facts do not count.
        let early = share_times(&conn, t0 + h(20)).unwrap();
        assert_eq!(early.len(), 1);
        assert_eq!(hours(early[0].to_share()), Some(10));
        let md = summary.render_md(Language::En);
        assert!(
            md.contains("| submission to share beyond class 1 | 10.0 h | 30.0 h | 2 |"),
            "{md}"
        );
        assert!(
            md.contains("| submission to disposition | 30.0 h | 2.1 days | 2 |"),
            "{md}"
        );
        let md = summary.render_md(Language::Ja);
        assert!(
            md.contains("| 情報提供 → 第1類以外への共有 | 10.0時間 | 30.0時間 | 2 |"),
            "{md}"
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = |v: &[i64]| Spread::of(v.iter().map(|h| TimeDelta::seconds(*h))).unwrap();
        assert_eq!(
            s(&[5]),
            Spread {
                median_seconds: 5,
                p90_seconds: 5
            }
        );
        assert_eq!(
            s(&[4, 1, 3, 2]),
            Spread {
                median_seconds: 2,
                p90_seconds: 4
            }
        );
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(
            s(&ten),
            Spread {
                median_seconds: 5,
                p90_seconds: 9
            }
        );
        assert!(Spread::of(std::iter::empty()).is_none());
    }

    #[test]
    fn japanese_dates() {
        assert_eq!(wareki(date(2019, 5, 17)), "令和元年5月17日");
        assert_eq!(wareki(date(2020, 6, 5)), "令和2年6月5日");
        assert_eq!(wareki(date(2019, 4, 1)), "平成31年4月1日");
    }
}

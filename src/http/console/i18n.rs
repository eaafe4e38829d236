//! The console's two languages: English and Japanese.
//!
//! The language comes from the `musubi_lang` cookie (set by the switch link), else from
//! `Accept-Language`, else English. Every string a page shows is a key here, so that a
//! missing translation is a compile-time table entry, not a silent English fallback.

use std::collections::BTreeMap;

use axum::http::HeaderMap;

use crate::model::{Disposition, Language, Sector};

/// The cookie that remembers an explicit choice.
pub const LANG_COOKIE: &str = "musubi_lang";

/// The console's texts for a [`Language`] (the model's one language type; flags are
/// labelled by the model's table, `FlagKind::label`).
pub trait Text: Sized {
    /// The cookie, else the best of `Accept-Language` among ours, else English.
    fn from_headers(headers: &HeaderMap) -> Self;
    /// The highest-weighted of `ja` and `en` in an `Accept-Language` value.
    fn from_accept_language(accept: &str) -> Self;
    /// The whole string table for templates (`t.key`).
    fn table(self) -> BTreeMap<&'static str, &'static str>;
    /// One string by key (`?` if unknown, which a unit test rules out).
    fn t(self, key: &str) -> &'static str;
    fn sector(self, s: Sector) -> &'static str;
    fn disposition(self, d: Disposition) -> &'static str;
}

impl Text for Language {
    fn from_headers(headers: &HeaderMap) -> Language {
        if let Some(l) =
            super::session::cookie(headers, LANG_COOKIE).and_then(|v| Language::parse(&v))
        {
            return l;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Language::from_accept_language(accept)
    }

    fn from_accept_language(accept: &str) -> Language {
        let mut best: Option<(f32, Language)> = None;
        for part in accept.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Language::parse(primary)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Language::En)
    }

    fn table(self) -> BTreeMap<&'static str, &'static str> {
        STRINGS
            .iter()
            .map(|(k, en, ja)| (*k, if self == Language::En { *en } else { *ja }))
            .collect()
    }

    fn t(self, key: &str) -> &'static str {
        STRINGS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, en, ja)| if self == Language::En { *en } else { *ja })
            .unwrap_or("?")
    }

    fn sector(self, s: Sector) -> &'static str {
        if self == Language::En {
            return s.as_str();
        }
        match s {
            Sector::Telecom => "情報通信",
            Sector::Finance => "金融",
            Sector::Aviation => "航空",
            Sector::Airports => "空港",
            Sector::Railway => "鉄道",
            Sector::Electricity => "電力",
            Sector::Gas => "ガス",
            Sector::Medical => "医療",
            Sector::Water => "水道",
            Sector::Logistics => "物流",
            Sector::Chemical => "化学",
            Sector::Credit => "クレジット",
            Sector::Petroleum => "石油",
        }
    }

    fn disposition(self, d: Disposition) -> &'static str {
        match (self, d) {
            (Language::En, Disposition::SharedPublic) => "Shared (public)",
            (Language::En, Disposition::SharedLimited) => "Shared (limited)",
            (Language::En, Disposition::LowNeedKnown) => "Low need: already known",
            (Language::En, Disposition::LowNeedTransient) => "Low need: transient",
            (Language::En, Disposition::LowNeedOther) => "Low need: other",
            (Language::En, Disposition::AbandonedNoConsent) => "Abandoned: no consent",
            (Language::En, Disposition::AbandonedInsufficientSamples) => {
                "Abandoned: insufficient samples"
            }
            (Language::En, Disposition::AbandonedOther) => "Abandoned: other",
            (Language::En, Disposition::UnderAnalysis) => "Under analysis",
            (Language::Ja, Disposition::SharedPublic) => "共有（一般公開）",
            (Language::Ja, Disposition::SharedLimited) => "共有（限定）",
            (Language::Ja, Disposition::LowNeedKnown) => "共有不要（既知）",
            (Language::Ja, Disposition::LowNeedTransient) => "共有不要（一過性）",
            (Language::Ja, Disposition::LowNeedOther) => "共有不要（その他）",
            (Language::Ja, Disposition::AbandonedNoConsent) => "見送り（同意なし）",
            (Language::Ja, Disposition::AbandonedInsufficientSamples) => "見送り（検体不足）",
            (Language::Ja, Disposition::AbandonedOther) => "見送り（その他）",
            (Language::Ja, Disposition::UnderAnalysis) => "分析中",
        }
    }
}

/// (key, English, Japanese).
const STRINGS: &[(&str, &str, &str)] = &[
    ("app_name", "musubi console", "musubi コンソール"),
    (
        "tagline",
        "Council campaign review",
        "協議会キャンペーン分析",
    ),
    ("nav_dashboard", "Dashboard", "ダッシュボード"),
    ("nav_campaigns", "Campaigns", "キャンペーン"),
    ("nav_stats", "Statistics", "統計"),
    ("nav_feeds", "Feeds", "フィード"),
    ("nav_advisories", "Advisories", "公開情報"),
    ("nav_inquiries", "Inquiries", "照会"),
    ("inquiries", "Inquiries", "照会"),
    (
        "inquiries_help",
        "Questions of the secretariat to member classes about an advisory or a campaign; members answer with reports.",
        "公開情報やキャンペーンについて事務局が会員区分に行う照会。会員は報告で回答します。",
    ),
    ("open_inquiry", "Open an inquiry", "照会を開始"),
    (
        "advisory_item",
        "Advisory (ID of one of its items)",
        "公開情報（項目のID）",
    ),
    ("or_campaign", "or campaign", "またはキャンペーン"),
    ("question", "Question", "照会内容"),
    ("ask_classes", "Classes asked", "照会先の区分"),
    ("about", "About", "対象"),
    ("answers", "Answers", "回答"),
    ("opened", "Opened", "開始日時"),
    (
        "bad_inquiry",
        "The inquiry could not be opened",
        "照会を開始できませんでした",
    ),
    (
        "answer_help",
        "Members answer with a report:",
        "会員は報告で回答します:",
    ),
    ("advisories", "Advisories", "公開情報"),
    (
        "advisories_help",
        "Public feed items that no member has reported: context for analysts, not campaigns.",
        "会員からの報告がない公開フィードの情報です。キャンペーンではなく、分析の参考情報です。",
    ),
    ("sign_in", "Sign in", "サインイン"),
    ("sign_out", "Sign out", "サインアウト"),
    ("token_label", "Member token", "メンバートークン"),
    (
        "token_help",
        "Paste the token the secretariat issued to you (msb_…). The console keeps only a session; your browser never stores the token.",
        "事務局が発行したトークン（msb_…）を貼り付けてください。コンソールはセッションのみを保持し、トークンはブラウザに保存されません。",
    ),
    (
        "sign_in_failed",
        "That token was not accepted.",
        "トークンが受け付けられませんでした。",
    ),
    (
        "form_expired",
        "The form expired; please try again.",
        "フォームの有効期限が切れました。もう一度お試しください。",
    ),
    ("signed_in_as", "Signed in as", "サインイン中"),
    ("role_secretariat", "Secretariat", "事務局"),
    ("role_class1", "Task force class 1", "タスクフォース 第1類"),
    ("role_class2", "Task force class 2", "タスクフォース 第2類"),
    ("role_general", "General member", "一般構成員"),
    ("switch_lang", "日本語", "English"),
    ("campaigns_visible", "Campaigns", "キャンペーン"),
    ("reports_visible", "Reports", "報告"),
    (
        "unconfirmed_campaigns",
        "Unconfirmed campaigns",
        "未確認キャンペーン",
    ),
    ("undecided", "Awaiting disposition", "判断待ち"),
    ("flags", "Flags", "フラグ"),
    (
        "no_flags",
        "No flags raised yet. Flags arrive with the correlation rules.",
        "フラグはまだありません。相関ルールの導入後に表示されます。",
    ),
    ("dispositions", "Dispositions", "対応判断"),
    (
        "dispositions_unavailable",
        "Not yet available: no disposition has been recorded.",
        "まだありません：対応判断は記録されていません。",
    ),
    ("review_queue", "Review queue", "レビュー待ち"),
    (
        "review_queue_empty",
        "Nothing is flagged for review.",
        "レビュー対象のフラグ付きキャンペーンはありません。",
    ),
    ("recent_activity", "Recent reports", "最近の報告"),
    ("no_reports", "No reports yet.", "報告はまだありません。"),
    ("campaign", "Campaign", "キャンペーン"),
    ("reports", "Reports", "報告"),
    ("report", "Report", "報告"),
    ("first_seen", "First seen", "初観測"),
    ("last_seen", "Last seen", "最終観測"),
    ("unconfirmed", "Unconfirmed", "未確認"),
    (
        "provider-and-secretariat",
        "Provider and secretariat only",
        "提供元・事務局限り",
    ),
    (
        "council-members",
        "Council members only",
        "評議会メンバー限り",
    ),
    (
        "members-and-supported",
        "Members and organisations they support",
        "メンバー及び支援先まで",
    ),
    ("suspected", "Suspected", "疑い"),
    ("confirmed", "Confirmed", "確認済み"),
    ("confidence", "Confidence", "確度"),
    ("source", "Source", "提供元"),
    ("council_member", "Council member", "協議会構成員"),
    ("feed", "Feed", "フィード"),
    ("title", "Title", "件名"),
    ("received", "Received", "受信"),
    ("filter", "Filter", "絞り込み"),
    ("flag_any", "Any flag", "すべてのフラグ"),
    ("sector", "Sector", "業種"),
    ("sector_any", "Any sector", "すべての業種"),
    ("since", "Active", "期間"),
    ("since_all", "Any time", "全期間"),
    ("since_1", "Last 24 hours", "過去24時間"),
    ("since_7", "Last 7 days", "過去7日間"),
    ("since_30", "Last 30 days", "過去30日間"),
    ("since_90", "Last 90 days", "過去90日間"),
    ("search", "Search", "検索"),
    (
        "search_placeholder",
        "Title, observable, tag…",
        "件名・観測値・タグ…",
    ),
    ("apply", "Apply", "適用"),
    ("clear", "Clear", "クリア"),
    (
        "no_campaigns",
        "No campaign matches.",
        "該当するキャンペーンはありません。",
    ),
    ("matching_reports", "Matching reports", "一致した報告"),
    ("summary", "Summary", "概要"),
    ("graph", "Reports and observables", "報告と観測値"),
    (
        "graph_help",
        "Squares are reports, dots observables. Observables carried by two or more reports are drawn large and labelled.",
        "四角は報告、点は観測値です。複数の報告に共通する観測値を大きく表示し、ラベルを付けています。",
    ),
    ("timeline", "Timeline", "タイムライン"),
    (
        "timeline_help",
        "Reports by source, at the time observed (or received). Marks in a dashed ring are unconfirmed.",
        "提供元ごとの報告（観測日時、なければ受信日時）。破線の輪は未確認です。",
    ),
    ("observables", "Observables", "観測値"),
    ("type", "Type", "種別"),
    ("value", "Value", "値"),
    ("carried_by", "Reports", "報告数"),
    ("shared", "shared", "共通"),
    ("copy", "Copy", "コピー"),
    ("copied", "Copied", "コピーしました"),
    ("copy_all", "Copy all values", "値をすべてコピー"),
    ("export_csv", "Download CSV", "CSV をダウンロード"),
    (
        "disposition_history",
        "Disposition history",
        "対応判断の履歴",
    ),
    (
        "no_dispositions",
        "No disposition recorded yet.",
        "対応判断はまだ記録されていません。",
    ),
    (
        "record_disposition",
        "Record a disposition",
        "対応判断を記録",
    ),
    ("disposition", "Disposition", "判断"),
    ("note", "Note", "メモ"),
    ("save", "Record", "記録する"),
    ("analyst", "Analyst", "担当"),
    ("at", "When", "日時"),
    ("merge_split", "Merge or split", "統合・分割"),
    ("merge_with", "Merge with campaign", "統合先キャンペーン"),
    (
        "split_reports",
        "Reports to split out (ids, comma-separated)",
        "分割する報告（ID、カンマ区切り）",
    ),
    ("request_merge", "Request merge", "統合を依頼"),
    ("request_split", "Request split", "分割を依頼"),
    (
        "pins_help",
        "Recorded as a request; the correlation engine honours it when it re-correlates.",
        "依頼として記録され、再相関時に相関エンジンが反映します。",
    ),
    ("pin_requests", "Recorded requests", "記録済みの依頼"),
    ("sectors", "Reporting sectors", "報告元の業種"),
    ("secretariat_only", "secretariat only", "事務局のみ"),
    ("correlation_history", "Correlation history", "相関の履歴"),
    ("why_grouped", "Why grouped", "グループ化の理由"),
    (
        "why_grouped_help",
        "Links between reports: the shared values and their weights (decayed weight / kind weight).",
        "報告間のリンク: 共有する値とその重み（減衰後 / 種別の重み）。",
    ),
    ("links", "Links", "リンク"),
    ("weight", "Weight", "重み"),
    ("threshold", "Threshold", "閾値"),
    (
        "suppressed_values",
        "Values that did not count",
        "関連付けに使われなかった値",
    ),
    (
        "near_links",
        "Near-links (below the threshold)",
        "閾値未満の近いリンク",
    ),
    ("reason", "Reason", "理由"),
    ("early_picture", "Early-stage picture", "初期段階の状況"),
    (
        "organisations",
        "Organisations affected",
        "影響を受けた組織数",
    ),
    (
        "related_campaigns",
        "Related earlier campaigns",
        "関連する過去のキャンペーン",
    ),
    (
        "related_help",
        "Shared infrastructure or techniques below the linking threshold; never merged automatically.",
        "関連付け閾値未満のインフラや手法の共通点。自動では統合しません。",
    ),
    ("score", "Score", "スコア"),
    ("not_found", "Not found", "見つかりません"),
    (
        "not_found_help",
        "There is no such campaign, or it is not shared with you.",
        "該当するキャンペーンがないか、共有の対象外です。",
    ),
    ("stats", "Statistics", "統計"),
    ("nav_ledger", "Ledger", "貢献台帳"),
    ("ledger", "Give-and-take ledger", "情報提供と受益の台帳"),
    (
        "ledger_help",
        "What each member gave the council against the campaigns shared with it. Members see their own row only.",
        "構成員ごとの情報提供と、その構成員に共有された攻撃活動の数。構成員には自らの行のみが表示されます。",
    ),
    ("ledger_name", "Name", "名称"),
    ("ledger_reports", "Reports submitted", "提供した報告"),
    (
        "ledger_contributed",
        "Campaigns contributed to",
        "貢献した攻撃活動",
    ),
    (
        "ledger_contributed_shared",
        "of which shared with the council",
        "うち協議会で共有されたもの",
    ),
    ("ledger_first", "First reporter", "最初の報告者"),
    ("ledger_sightings", "Sightings given", "観測情報"),
    ("ledger_answers", "Feedback answers", "フィードバック回答"),
    (
        "ledger_received",
        "Campaigns received",
        "共有を受けた攻撃活動",
    ),
    (
        "ledger_empty",
        "No ledger for this account.",
        "このアカウントの台帳はありません。",
    ),
    (
        "task_force_candidates",
        "Task-force candidates",
        "タスクフォース候補",
    ),
    (
        "task_force_candidates_help",
        "Active providers (contributions to at least two campaigns) who are not in class 1.",
        "第1類構成員でない活発な情報提供者 (2件以上の攻撃活動に貢献)。",
    ),
    (
        "task_force_candidates_none",
        "No active provider outside class 1.",
        "第1類以外に該当する情報提供者はいません。",
    ),
    ("time_to_share", "Time to share", "共有までの時間"),
    (
        "time_to_share_help",
        "From a campaign's first member submission to its first share beyond class 1 (a release or a disposition that shares) and to its disposition, over campaigns brought in during the window.",
        "攻撃活動の最初の構成員提供から、第1類以外への最初の共有 (公開の承認又は共有に至った対応) 及び対応の決定まで。期間内に持ち込まれた攻撃活動が対象。",
    ),
    ("last_30_days", "Last 30 days", "過去30日"),
    ("last_90_days", "Last 90 days", "過去90日"),
    ("to_share", "To share", "共有まで"),
    ("to_decide", "To disposition", "対応決定まで"),
    ("median", "Median", "中央値"),
    ("p90", "90th percentile", "90パーセンタイル"),
    ("campaigns_counted", "Campaigns", "件数"),
    ("waiting_longest", "Waiting longest", "対応待ちの長いもの"),
    ("waited", "Waiting", "経過"),
    ("shared_yet", "Shared", "共有"),
    ("feeds", "Feeds", "フィード"),
    (
        "not_yet_available",
        "Not yet available",
        "まだ利用できません",
    ),
    (
        "stats_periodic_missing",
        "Periodic council statistics (per quarter, per category) are not yet available: they come with the statistics module.",
        "四半期・分類別の協議会統計はまだ利用できません（統計モジュールの導入後に表示されます）。",
    ),
    ("by_tlp", "Reports by TLP", "TLP 別の報告数"),
    ("by_confidence", "Reports by confidence", "確度別の報告数"),
    (
        "by_disposition",
        "Campaigns by latest disposition",
        "最新の対応判断別キャンペーン数",
    ),
    (
        "feeds_none",
        "No feed items have been received yet: feed polling is not yet available in this build.",
        "フィードの受信記録はまだありません（このビルドではフィード取得は未対応です）。",
    ),
    ("items", "Items", "件数"),
    ("feed_health", "Feed health", "フィードの状態"),
    ("last_success", "Last success", "最終成功"),
    ("failures", "Failures", "連続失敗"),
    ("kept", "Kept", "採用"),
    ("normalised", "Normalised", "補正"),
    ("skipped", "Skipped", "除外"),
    (
        "skip_reasons",
        "Why skipped (first few)",
        "除外の理由（先頭の数件）",
    ),
    ("last_error", "Last error", "最後のエラー"),
    ("latest", "Latest", "最新"),
    ("saved", "Disposition recorded.", "対応判断を記録しました。"),
    ("pin_saved", "Request recorded.", "依頼を記録しました。"),
    (
        "bad_disposition",
        "Choose a disposition.",
        "判断を選択してください。",
    ),
    (
        "bad_pin",
        "Give a campaign id (C-YYYY-NNNN) or report ids (R-N).",
        "キャンペーン ID（C-YYYY-NNNN）または報告 ID（R-N）を指定してください。",
    ),
    (
        "unconfirmed_notice",
        "No report of this campaign is confirmed: handle it as unconfirmed information.",
        "このキャンペーンには確認済みの報告がありません。未確認情報として扱ってください。",
    ),
    ("handling", "Handling", "取扱い"),
    ("id", "ID", "ID"),
    ("count", "Count", "件数"),
    ("none", "None", "なし"),
    ("more", "more", "件ほか"),
    (
        "all_reports",
        "Reports of this campaign",
        "このキャンペーンの報告",
    ),
    ("member", "Member", "構成員"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_of_ours() {
        assert_eq!(
            Language::from_accept_language("ja,en-US;q=0.9"),
            Language::Ja
        );
        assert_eq!(
            Language::from_accept_language("en-GB,ja;q=0.5"),
            Language::En
        );
        assert_eq!(
            Language::from_accept_language("fr, ja-JP;q=0.3"),
            Language::Ja
        );
        assert_eq!(Language::from_accept_language("de"), Language::En);
        assert_eq!(Language::from_accept_language(""), Language::En);
    }

    #[test]
    fn table_keys_are_unique_and_translated() {
        let mut seen = std::collections::HashSet::new();
        for (k, en, ja) in STRINGS {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!en.is_empty() && !ja.is_empty(), "{k} has an empty text");
        }
        assert_eq!(Language::Ja.t("sign_in"), "サインイン");
    }
}

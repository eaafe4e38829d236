//! The full-text projection: a tantivy index of reports.
//!
//! The index is rebuilt from the store whenever needed. Each commit records, as its payload,
//! the last store [`Seq`] it contains, so that after a crash the indexer resumes right after
//! it — never missing a report, never indexing one twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, Query, QueryParser, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer};
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Score, SegmentReader, Term, doc,
};

use crate::model::{MemberId, Origin, Report, Scope, Seq, Tlp};

mod alongside;
mod visibility;
pub use alongside::Alongside;
use visibility::{SeqWindow, VisibilityCache};

/// The index folder inside the data directory.
pub const INDEX_DIR: &str = "index";
/// Bumped whenever the schema changes; a different version rebuilds the index.
const SCHEMA_VERSION: &str = "3";
/// Observable values are tokenised without the default 40-byte cut, which would drop every
/// SHA-256 and many URLs.
const OBSERVABLE_TOKENIZER: &str = "observable";
const WRITER_MEMORY: usize = 64 * 1024 * 1024;
/// The live writer's memory: one indexing thread (tantivy takes at least 15 MB a thread).
const LIVE_WRITER_MEMORY: usize = 20 * 1024 * 1024;

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("cannot use index directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid search query: {0}")]
    Query(String),
    #[error("cannot read the store: {0}")]
    Store(String),
    #[error("the index is held by another process (is `musubi serve` running?)")]
    Locked,
    #[error("cannot start the indexing thread: {0}")]
    Thread(std::io::Error),
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    seq: Field,
    title: Field,
    description: Field,
    observables: Field,
    observable_key: Field,
    tags: Field,
    tlp: Field,
    received_at: Field,
    /// What visibility depends on that never changes, as terms the visibility filter
    /// matches *inside* the query ([`DocFilter`]): the static class (origin kind, TLP,
    /// scope), the providing member and the named RED recipients. None of them is a
    /// searchable field ([`SEARCH_FIELDS`]).
    class: Field,
    provider: Field,
    recipient: Field,
}

/// The fields a query may name (`title:loader`): the README's API section documents them.
/// Every other field of the schema exists for the visibility filter or for ordering, and
/// naming it in a query (`tlp:red`, `seq:12`, `provider:m121`) would make the query an
/// oracle on what the filter hides; the query is refused instead.
pub const SEARCH_FIELDS: [&str; 4] = ["title", "description", "observables", "tags"];

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        seq: b.add_u64_field("seq", INDEXED | STORED | FAST),
        title: b.add_text_field("title", TEXT),
        description: b.add_text_field("description", TEXT),
        observables: b.add_text_field(
            "observables",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(OBSERVABLE_TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            ),
        ),
        observable_key: b.add_text_field("observable_key", STRING),
        tags: b.add_text_field("tags", TEXT),
        tlp: b.add_text_field("tlp", STRING),
        received_at: b.add_date_field("received_at", INDEXED | FAST),
        class: b.add_text_field("class", STRING),
        provider: b.add_text_field("provider", STRING),
        recipient: b.add_text_field("recipient", STRING),
    };
    (b.build(), fields)
}

/// The report index (shared by the indexer and searchers).
pub struct ReportIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    path: PathBuf,
    /// Evaluated visibility filters and sequence runs per segment (see [`visibility`]).
    visibility: VisibilityCache,
}

impl ReportIndex {
    /// Opens the index in `data_dir/index`, creating it (or re-creating it after a schema
    /// change) as needed.
    pub fn open(data_dir: &Path) -> Result<ReportIndex, IndexError> {
        let path = data_dir.join(INDEX_DIR);
        let version_file = path.join("musubi-schema-version");
        let current = std::fs::read_to_string(&version_file).unwrap_or_default();
        if path.exists() && current.trim() != SCHEMA_VERSION {
            tracing::warn!(path = %path.display(), "Index schema changed; rebuilding the index from the store.");
            std::fs::remove_dir_all(&path).map_err(|source| IndexError::Dir {
                path: path.clone(),
                source,
            })?;
        }
        std::fs::create_dir_all(&path).map_err(|source| IndexError::Dir {
            path: path.clone(),
            source,
        })?;
        let (schema, fields) = schema();
        let dir = tantivy::directory::MmapDirectory::open(&path)
            .map_err(|e| IndexError::Tantivy(e.into()))?;
        let index = Index::open_or_create(dir, schema)?;
        index.tokenizers().register(
            OBSERVABLE_TOKENIZER,
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .build(),
        );
        std::fs::write(&version_file, SCHEMA_VERSION).map_err(|source| IndexError::Dir {
            path: path.clone(),
            source,
        })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(ReportIndex {
            index,
            reader,
            fields,
            path,
            visibility: VisibilityCache::default(),
        })
    }

    /// Deletes the index folder so that the next open starts empty (`musubi reindex`).
    pub fn destroy(data_dir: &Path) -> Result<(), IndexError> {
        let path = data_dir.join(INDEX_DIR);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|source| IndexError::Dir { path, source })?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last store sequence number the committed index contains.
    pub fn indexed_seq(&self) -> Result<Seq, IndexError> {
        let metas = self.index.load_metas()?;
        Ok(metas
            .payload
            .and_then(|p| p.parse().ok())
            .map(Seq)
            .unwrap_or_default())
    }

    /// Takes the index's single writer. Fails with [`IndexError::Locked`] if another
    /// process (the daemon) holds it.
    pub fn indexer(&self) -> Result<Indexer, IndexError> {
        self.indexer_from(self.index.writer(WRITER_MEMORY))
    }

    /// [`ReportIndex::indexer`] for a daemon's steady state: a few hundred small reports
    /// every round. Its one indexing thread writes one segment a commit where the bulk
    /// writer's threads write one each; under a load of small submissions the extra
    /// segments and their merges were a third of the indexing time.
    pub fn live_indexer(&self) -> Result<Indexer, IndexError> {
        self.indexer_from(self.index.writer_with_num_threads(1, LIVE_WRITER_MEMORY))
    }

    fn indexer_from(&self, writer: tantivy::Result<IndexWriter>) -> Result<Indexer, IndexError> {
        let writer = match writer {
            Ok(w) => w,
            Err(tantivy::TantivyError::LockFailure(..)) => return Err(IndexError::Locked),
            Err(e) => return Err(e.into()),
        };
        Ok(Indexer {
            writer,
            fields: self.fields,
            last: self.indexed_seq()?,
            pending: 0,
        })
    }

    /// Makes the latest commit visible to searches.
    pub fn refresh(&self) -> Result<(), IndexError> {
        self.reader.reload()?;
        Ok(())
    }

    /// Searches every report, best BM25 score first (benchmarks and tests; the secretariat
    /// gets the same through the read path). Outputs search through
    /// `council::read::ReadPath::search`, which filters by what their viewer may see.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<(Seq, f32)>, IndexError> {
        Ok(self
            .search_visible(query, &DocFilter::Any, Ranking::Relevance, limit)?
            .into_iter()
            .map(|(seq, score)| (seq, score.unwrap_or(0.0)))
            .collect())
    }

    /// Searches titles, descriptions, observable values and tags among the documents that
    /// `filter` admits; returns report sequence numbers, in `ranking` order, with their
    /// BM25 scores under [`Ranking::Relevance`]. Query syntax is tantivy's (`a AND b`,
    /// `"phrase"`, `title:word`) over the fields of [`SEARCH_FIELDS`] only; an observable
    /// value such as `evil.example.com` matches exactly, else as a phrase.
    ///
    /// The filter is a clause of the query itself: documents it rejects are never matched,
    /// so they take no part in the limit, the exact-match fallback or the order.
    pub fn search_visible(
        &self,
        query: &str,
        filter: &DocFilter,
        ranking: Ranking,
        limit: usize,
    ) -> Result<Vec<(Seq, Option<f32>)>, IndexError> {
        self.search_by(query, filter, ranking, limit, Evaluation::Cached)
    }

    /// [`ReportIndex::search_visible`], with the filter evaluated as `evaluation` says: the
    /// plain evaluation is the reference the cached one is tested against.
    fn search_by(
        &self,
        query: &str,
        filter: &DocFilter,
        ranking: Ranking,
        limit: usize,
        evaluation: Evaluation,
    ) -> Result<Vec<(Seq, Option<f32>)>, IndexError> {
        let f = self.fields;
        if query.trim().is_empty() {
            return Err(IndexError::Query("the query is empty".into()));
        }
        // A query that is one observable value (pasted from an alert) is answered from the
        // exact `kind:value` terms: as a phrase over the value's tokens it would walk the
        // posting lists of tokens every value shares (`com`, `http`, ...), the slowest
        // searches at a million reports. Only when no visible report holds it exactly does
        // the value run as a phrase (it also finds the value inside longer ones, e.g. as a
        // subdomain).
        let keys = exact_observable_keys(query);
        let text = if keys.is_empty() {
            check_fields(query)?;
            query.to_string()
        } else {
            // The value as one phrase: unquoted, `http://x` would read as a field `http`.
            format!("\"{}\"", query.trim().trim_matches('"'))
        };
        // Words are all required, as an analyst typing "loader ransomware" means (and as
        // search engines do); `OR` asks for either. Requiring every word also lets the
        // scorer skip documents that lack the rarest word instead of scoring the union of
        // posting lists that, for common words, hold most of a million reports.
        let mut parser = QueryParser::for_index(
            &self.index,
            vec![f.title, f.description, f.observables, f.tags],
        );
        parser.set_conjunction_by_default();
        let (q, _errors) = parser.parse_query_lenient(&text);
        let filter = filter.clone().simplified();
        if filter == DocFilter::Nothing {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        // The filter as the documents it admits: evaluated once per segment and filter and
        // kept (its `Debug` form, which names the released set by version, is the key), or
        // (the reference) as a clause that every search evaluates again.
        let visible = match (&filter, evaluation) {
            (DocFilter::Any, _) => Visible::Everything,
            (_, Evaluation::Plain) => Visible::Clause(self.to_query(&filter)?),
            (_, Evaluation::Cached) => Visible::Bits(self.visibility.bits(
                &searcher,
                &format!("{filter:?}"),
                || self.to_query(&filter),
            )?),
        };
        let filtered = |q: Box<dyn Query>,
                        window: SeqWindow|
         -> Result<Box<dyn Query>, IndexError> {
            let clause: Box<dyn Query> = match &visible {
                Visible::Everything if window == SeqWindow::ALL => return Ok(q),
                Visible::Everything => Box::new(self.visibility.admitted(&searcher, None, window)?),
                // Scores come from the user's query alone.
                Visible::Clause(v) => Box::new(ConstScoreQuery::new(v.box_clone(), 0.0)),
                Visible::Bits(bits) => {
                    Box::new(self.visibility.admitted(&searcher, Some(bits), window)?)
                }
            };
            Ok(Box::new(BooleanQuery::new(vec![
                (Occur::Must, q),
                (Occur::Must, clause),
            ])))
        };
        let want = limit.max(1);
        let run_once = |q: &dyn Query| -> Result<Vec<(Seq, Option<f32>)>, IndexError> {
            let top = TopDocs::with_limit(want);
            match ranking {
                Ranking::Relevance => {
                    // Equal scores go newest first: the order must not depend on how this
                    // node's index happens to be cut into segments (two nodes hold the same
                    // reports in different segments). The sequence number comes from its
                    // fast column, not the document store (a stored document decompresses a
                    // whole block).
                    let by_score_then_newest = top.tweak_score(|segment: &SegmentReader| {
                        let seq = segment.fast_fields().u64("seq").ok();
                        move |doc: DocId, score: Score| {
                            (score, seq.as_ref().and_then(|c| c.first(doc)).unwrap_or(0))
                        }
                    });
                    let hits = searcher.search(q, &by_score_then_newest)?;
                    Ok(hits
                        .into_iter()
                        .filter(|((_, seq), _)| *seq > 0)
                        .map(|((score, seq), _)| (Seq(seq), Some(score)))
                        .collect())
                }
                Ranking::Newest => {
                    let hits = searcher.search(q, &top.order_by_u64_field("seq", Order::Desc))?;
                    Ok(hits
                        .into_iter()
                        .filter_map(|(seq, _)| Some((Seq(seq?), None)))
                        .collect())
                }
            }
        };
        // Newest first: look at the newest sequence numbers first and widen the window only
        // while it holds fewer than `limit` hits. A window holding `limit` hits holds the
        // `limit` newest: every hit outside it is older than every document inside it.
        let run = |q: Box<dyn Query>| -> Result<Vec<(Seq, Option<f32>)>, IndexError> {
            if ranking == Ranking::Relevance || evaluation == Evaluation::Plain {
                return run_once(filtered(q, SeqWindow::ALL)?.as_ref());
            }
            let newest = visibility::newest_seq(&searcher)?;
            let mut span = FIRST_WINDOW;
            loop {
                let window = SeqWindow::newest(newest, span);
                let hits = run_once(filtered(q.box_clone(), window)?.as_ref())?;
                if window == SeqWindow::ALL || hits.len() >= want {
                    return Ok(hits);
                }
                span = span.saturating_mul(8);
            }
        };
        if !keys.is_empty() {
            let exact = BooleanQuery::new(
                keys.iter()
                    .map(|k| {
                        let q: Box<dyn Query> = Box::new(TermQuery::new(
                            Term::from_field_text(f.observable_key, k),
                            IndexRecordOption::WithFreqs,
                        ));
                        (Occur::Should, q)
                    })
                    .collect(),
            );
            let hits = run(Box::new(exact))?;
            if !hits.is_empty() {
                return Ok(hits);
            }
        }
        run(q)
    }

    /// The tantivy form of a visibility filter (reads the released set if it names it).
    fn to_query(&self, filter: &DocFilter) -> Result<Box<dyn Query>, IndexError> {
        let f = self.fields;
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))
        };
        let all = |parts: &[DocFilter], occur: Occur| -> Result<Box<dyn Query>, IndexError> {
            Ok(Box::new(BooleanQuery::new(
                parts
                    .iter()
                    .map(|p| Ok((occur, self.to_query(p)?)))
                    .collect::<Result<_, IndexError>>()?,
            )))
        };
        Ok(match filter {
            DocFilter::Any => Box::new(AllQuery),
            DocFilter::Nothing => Box::new(EmptyQuery),
            DocFilter::Class {
                submission,
                tlp,
                scope,
            } => term(f.class, &class_key(*submission, *tlp, *scope)),
            DocFilter::ProvidedBy(m) => term(f.provider, &m.0),
            DocFilter::Recipient(m) => term(f.recipient, &m.0),
            DocFilter::Released(set) => {
                let seqs = (set.load)()?;
                Box::new(TermSetQuery::new(
                    seqs.iter().map(|s| Term::from_field_u64(f.seq, s.0)),
                ))
            }
            DocFilter::And(parts) => all(parts, Occur::Must)?,
            DocFilter::Or(parts) => all(parts, Occur::Should)?,
            DocFilter::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
                (Occur::MustNot, self.to_query(inner)?),
            ])),
        })
    }

    /// Number of documents visible to searches.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }
}

/// How hits are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// BM25, best first. Its statistics (document frequencies, average lengths) are those of
    /// the whole index, hidden documents included: only for a viewer who sees everything.
    Relevance,
    /// Newest first by store order (the order reports were received), which no other
    /// document can change: for every viewer who does not see everything.
    Newest,
}

/// How a search evaluates its visibility filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evaluation {
    /// From the per-segment bits kept by [`VisibilityCache`], newest first by widening
    /// windows.
    Cached,
    /// As a clause of every query, visiting every hit (the reference of the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Plain,
}

/// The visibility clause of one search.
enum Visible {
    Everything,
    Clause(Box<dyn Query>),
    Bits(std::collections::HashMap<tantivy::index::SegmentId, Arc<visibility::DocBits>>),
}

/// How many of the newest sequence numbers a newest-first search looks at first (then 8
/// times more each round): at a million reports, four rounds at most. The tests' corpora
/// are small: they start narrower so that every round is taken.
#[cfg(not(test))]
const FIRST_WINDOW: u64 = 4096;
#[cfg(test)]
const FIRST_WINDOW: u64 = 64;

/// The released reports at one state of the store, named by a version so that the index
/// keeps the filters evaluated with it and reads the set itself only when it evaluates a
/// filter afresh (reading every released report for every search cost more than the
/// search).
#[derive(Clone)]
pub struct ReleasedSet {
    version: ReleasedVersion,
    load: Arc<dyn Fn() -> Result<Arc<[Seq]>, IndexError> + Send + Sync>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReleasedVersion {
    /// The store's release count: it grows with every release, the only way the set
    /// changes.
    Store(u64),
    /// A set given by its content (tests, benchmarks): its length and hash.
    Content(usize, u64),
}

impl ReleasedSet {
    /// A set given by its content.
    pub fn of(seqs: Arc<[Seq]>) -> ReleasedSet {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seqs.hash(&mut h);
        ReleasedSet {
            version: ReleasedVersion::Content(seqs.len(), h.finish()),
            load: Arc::new(move || Ok(seqs.clone())),
        }
    }

    /// The store's set after `releases` releases, read by `load` only when needed.
    pub fn versioned(
        releases: u64,
        load: impl Fn() -> Result<Vec<Seq>, String> + Send + Sync + 'static,
    ) -> ReleasedSet {
        ReleasedSet {
            version: ReleasedVersion::Store(releases),
            load: Arc::new(move || load().map(Arc::from).map_err(IndexError::Store)),
        }
    }

    /// Whether the set is known to be empty without reading it.
    fn known_empty(&self) -> bool {
        matches!(
            self.version,
            ReleasedVersion::Store(0) | ReleasedVersion::Content(0, _)
        )
    }
}

impl PartialEq for ReleasedSet {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
    }
}

/// The version only: a filter's `Debug` form is the key of its cached evaluation.
impl std::fmt::Debug for ReleasedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.version)
    }
}

/// A condition on the facts of a report that visibility depends on, evaluated by the index
/// inside the query. The index does not decide who sees what: the council builds the
/// filter from its policy (`council::read::search`) and the index only evaluates it.
#[derive(Debug, Clone, PartialEq)]
pub enum DocFilter {
    /// Every document.
    Any,
    /// No document.
    Nothing,
    /// Documents of one static class: a member's submission or a feed item, with this TLP
    /// and sharing scope.
    Class {
        submission: bool,
        tlp: Tlp,
        scope: Option<Scope>,
    },
    /// Submissions of this member.
    ProvidedBy(MemberId),
    /// TLP:RED reports naming this member as a recipient.
    Recipient(MemberId),
    /// The released reports (release changes over time, so it is not indexed: the set is
    /// read from the store when a filter naming a new version of it is evaluated).
    Released(ReleasedSet),
    And(Vec<DocFilter>),
    Or(Vec<DocFilter>),
    Not(Box<DocFilter>),
}

impl DocFilter {
    /// The same filter with constants folded away (`Any`/`Nothing` only at the top).
    pub fn simplified(self) -> DocFilter {
        match self {
            DocFilter::And(parts) => {
                let mut out = Vec::new();
                for p in parts.into_iter().map(DocFilter::simplified) {
                    match p {
                        DocFilter::Any => {}
                        DocFilter::Nothing => return DocFilter::Nothing,
                        p => out.push(p),
                    }
                }
                match out.len() {
                    0 => DocFilter::Any,
                    1 => out.pop().unwrap_or(DocFilter::Any),
                    _ => DocFilter::And(out),
                }
            }
            DocFilter::Or(parts) => {
                let mut out = Vec::new();
                for p in parts.into_iter().map(DocFilter::simplified) {
                    match p {
                        DocFilter::Any => return DocFilter::Any,
                        DocFilter::Nothing => {}
                        p => out.push(p),
                    }
                }
                match out.len() {
                    0 => DocFilter::Nothing,
                    1 => out.pop().unwrap_or(DocFilter::Nothing),
                    _ => DocFilter::Or(out),
                }
            }
            DocFilter::Not(inner) => match inner.simplified() {
                DocFilter::Any => DocFilter::Nothing,
                DocFilter::Nothing => DocFilter::Any,
                p => DocFilter::Not(Box::new(p)),
            },
            DocFilter::Released(set) if set.known_empty() => DocFilter::Nothing,
            other => other,
        }
    }
}

/// The indexed term of a report's static class ([`DocFilter::Class`]).
fn class_key(submission: bool, tlp: Tlp, scope: Option<Scope>) -> String {
    format!(
        "{}|{}|{}",
        if submission {
            "submission"
        } else {
            "feed_item"
        },
        tlp.as_str(),
        scope.map_or("none", Scope::as_str)
    )
}

/// Refuses a query that names a field outside [`SEARCH_FIELDS`] (`tlp:red`, `seq:12`, or
/// `http:` of an unquoted URL inside a longer query), naming the field.
fn check_fields(query: &str) -> Result<(), IndexError> {
    use tantivy::query_grammar::{UserInputAst, UserInputLeaf};
    fn walk(ast: &UserInputAst, out: &mut Vec<String>) {
        match ast {
            UserInputAst::Clause(clauses) => clauses.iter().for_each(|(_, a)| walk(a, out)),
            UserInputAst::Boost(a, _) => walk(a, out),
            UserInputAst::Leaf(leaf) => {
                let field = match leaf.as_ref() {
                    UserInputLeaf::Literal(l) => l.field_name.clone(),
                    UserInputLeaf::All => None,
                    UserInputLeaf::Range { field, .. }
                    | UserInputLeaf::Set { field, .. }
                    | UserInputLeaf::Regex { field, .. } => field.clone(),
                    UserInputLeaf::Exists { field } => Some(field.clone()),
                };
                out.extend(field);
            }
        }
    }
    let (ast, _) = tantivy::query_grammar::parse_query_lenient(query);
    let mut fields = Vec::new();
    walk(&ast, &mut fields);
    match fields
        .into_iter()
        .find(|f| !SEARCH_FIELDS.contains(&f.as_str()))
    {
        None => Ok(()),
        Some(field) => Err(IndexError::Query(format!(
            "unknown search field `{field}`: the fields are {} (quote a value that holds a colon)",
            SEARCH_FIELDS.join(", ")
        ))),
    }
}

/// The `kind:value` keys a query stands for if it is a single observable value (optionally
/// quoted), else none. Plain words never qualify: a value needs a dot, colon, slash or `@`,
/// or to be a hash.
fn exact_observable_keys(query: &str) -> Vec<String> {
    use crate::model::{Observable, ObservableKind as K};
    let q = query.trim();
    let q = q
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(q)
        .trim();
    if q.is_empty() || q.contains(char::is_whitespace) {
        return Vec::new();
    }
    let hex = matches!(q.len(), 32 | 40 | 64) && q.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex && !q.contains(['.', ':', '/', '@']) {
        return Vec::new();
    }
    let mut keys: Vec<String> = [
        K::Ipv4,
        K::Ipv6,
        K::Url,
        K::Email,
        K::Domain,
        K::Md5,
        K::Sha1,
        K::Sha256,
    ]
    .into_iter()
    .filter_map(|kind| Observable::parse(kind, q).ok())
    .map(|o| o.key())
    .collect();
    keys.dedup();
    keys
}

/// The one writer of the index. Adds reports in store order and commits with the last
/// sequence number as payload.
pub struct Indexer {
    writer: IndexWriter,
    fields: Fields,
    last: Seq,
    pending: usize,
}

impl Indexer {
    /// The last sequence number added (committed or not).
    pub fn last(&self) -> Seq {
        self.last
    }

    /// Adds a report; reports at or below [`Indexer::last`] are skipped (already indexed).
    pub fn add(&mut self, report: &Report) -> Result<(), IndexError> {
        if report.seq() <= self.last {
            return Ok(());
        }
        let f = self.fields;
        let d = &report.draft;
        let mut document = doc!(
            f.seq => report.seq().0,
            f.title => d.title.as_str(),
            f.description => d.description.as_str(),
            f.tlp => d.tlp.as_str(),
            f.received_at => tantivy::DateTime::from_timestamp_micros(report.received_at.timestamp_micros()),
        );
        for i in &d.indicators {
            document.add_text(f.observables, i.observable.value());
            document.add_text(f.observable_key, i.observable.key());
        }
        for tag in &d.tags {
            document.add_text(f.tags, tag);
        }
        let submission = matches!(report.origin, Origin::Submission { .. });
        document.add_text(f.class, class_key(submission, d.tlp, d.scope));
        if let Origin::Submission { member } = &report.origin {
            document.add_text(f.provider, &member.0);
        }
        for r in &d.recipients {
            document.add_text(f.recipient, &r.0);
        }
        // No delete of an earlier copy: `last` is the payload of the commit that holds
        // every report up to it, and what was added after it is lost with the process, so a
        // report after `last` is not in the index. (A delete per report cost a term query
        // at each add and at each commit: 4 % of an import's time.)
        self.writer.add_document(document)?;
        self.last = report.seq();
        self.pending += 1;
        Ok(())
    }

    /// Commits what was added, recording the last sequence number. Blocks (call off the
    /// async runtime).
    pub fn commit(&mut self) -> Result<(), IndexError> {
        if self.pending == 0 {
            return Ok(());
        }
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&self.last.0.to_string());
        prepared.commit()?;
        self.pending = 0;
        Ok(())
    }

    /// Empties the index (for a rebuild); the next commit records the new state.
    pub fn clear(&mut self) -> Result<(), IndexError> {
        self.writer.delete_all_documents()?;
        self.last = Seq(0);
        self.pending += 1;
        Ok(())
    }
}

/// Brings the index up to the store: adds every report after the last one indexed and
/// commits. Returns how many reports were added. Blocks; run it off the async runtime.
pub fn catch_up(indexer: &mut Indexer, store: &crate::store::Store) -> Result<usize, IndexError> {
    catch_up_with(indexer, store, |_| {})
}

/// How many reports a long catch-up adds between commits.
const CATCH_UP_COMMIT_EVERY: usize = 200_000;

/// [`catch_up`] that commits every [`CATCH_UP_COMMIT_EVERY`] reports on the way and calls
/// `committed` with the sequence number each intermediate commit reached, so that a long
/// catch-up (after a bulk import) shows progress and serves searches before it ends.
pub fn catch_up_with(
    indexer: &mut Indexer,
    store: &crate::store::Store,
    mut committed: impl FnMut(Seq),
) -> Result<usize, IndexError> {
    let mut added = 0;
    let mut since_commit = 0;
    loop {
        let n = add_after(indexer, store)?;
        if n == 0 {
            break;
        }
        added += n;
        since_commit += n;
        if since_commit >= CATCH_UP_COMMIT_EVERY && n == CATCH_UP_BATCH {
            indexer.commit()?;
            committed(indexer.last());
            since_commit = 0;
        }
    }
    indexer.commit()?;
    Ok(added)
}

/// How many reports a catch-up reads from the store at a time.
const CATCH_UP_BATCH: usize = 5_000;

/// Adds (without committing) up to [`CATCH_UP_BATCH`] stored reports beyond the indexer's
/// last; returns how many.
fn add_after(indexer: &mut Indexer, store: &crate::store::Store) -> Result<usize, IndexError> {
    let last = indexer.last();
    let reports = store
        .read(|conn| crate::store::reports::after(conn, last, CATCH_UP_BATCH))
        .map_err(|e| IndexError::Store(e.to_string()))?;
    for report in &reports {
        indexer.add(report)?;
    }
    Ok(reports.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_observable_value_is_searched_by_its_exact_key() {
        assert_eq!(
            exact_observable_keys("\"Evil.Example.COM\""),
            vec!["domain:evil.example.com".to_string()]
        );
        assert!(exact_observable_keys(" 10.0.0.1 ").contains(&"ipv4:10.0.0.1".to_string()));
        let sha = "ab".repeat(32);
        assert_eq!(exact_observable_keys(&sha), vec![format!("sha256:{sha}")]);
        // Words, phrases and query syntax keep the full-text path.
        assert!(exact_observable_keys("phishing").is_empty());
        assert!(exact_observable_keys("evil.example.com AND phishing").is_empty());
        assert!(exact_observable_keys("\"\"").is_empty());
    }

    #[test]
    fn queries_may_name_the_documented_fields_only() {
        for ok in [
            "loader",
            "title:loader AND tags:apt",
            "description:\"two words\" OR observables:evil.example",
            "\"http://evil.example/x\" loader",
        ] {
            assert!(check_fields(ok).is_ok(), "{ok}");
        }
        for (bad, field) in [
            ("tlp:red", "tlp"),
            ("loader AND seq:[0 TO 10]", "seq"),
            ("provider:m001", "provider"),
            ("class:*", "class"),
            ("http://evil.example/x loader", "http"),
        ] {
            let Err(IndexError::Query(m)) = check_fields(bad) else {
                panic!("{bad} accepted");
            };
            assert!(m.contains(&format!("`{field}`")), "{bad}: {m}");
        }
    }

    #[test]
    fn search_finds_a_value_exactly_and_inside_longer_values() {
        use crate::model::{Indicator, Observable, Origin, Report, ReportDraft, ReportId};
        let dir = tempfile::tempdir().expect("temp dir");
        let index = ReportIndex::open(dir.path()).expect("open");
        let mut ix = index.indexer().expect("writer");
        let report = |seq: u64, domain: &str| Report {
            id: ReportId(Seq(seq)),
            origin: Origin::FeedItem { feed: "t".into() },
            received_at: chrono::Utc::now(),
            draft: ReportDraft {
                indicators: vec![Indicator {
                    observable: Observable::parse_named("domain", domain).expect("domain"),
                    comment: None,
                    stix_id: None,
                }],
                ..ReportDraft::new(format!("report {seq}"), crate::model::Tlp::Green)
            },
        };
        ix.add(&report(1, "evil.example.com")).expect("add");
        ix.add(&report(2, "cdn.evil.example.com")).expect("add");
        ix.commit().expect("commit");
        index.refresh().expect("refresh");
        let seqs = |q: &str| -> Vec<u64> {
            let mut s: Vec<u64> = index
                .search(q, 10)
                .expect("search")
                .into_iter()
                .map(|(s, _)| s.0)
                .collect();
            s.sort();
            s
        };
        // Held exactly by report 1: only it.
        assert_eq!(seqs("evil.example.com"), vec![1]);
        // Held by no report exactly: the phrase finds it inside the longer value.
        assert_eq!(seqs("example.com"), vec![1, 2]);
        // Every word is required; OR asks for either.
        assert_eq!(seqs("report 1"), vec![1]);
        assert_eq!(seqs("report OR 2"), vec![1, 2]);
        assert_eq!(seqs("1 OR 2"), vec![1, 2]);
    }

    /// What was added but not committed is gone with the writer, and the next writer adds
    /// it again from the last commit: each report is found once, with no delete of an
    /// earlier copy.
    #[test]
    fn reports_replayed_after_a_lost_writer_are_found_once() {
        use crate::model::{Origin, Report, ReportDraft, ReportId};
        let dir = tempfile::tempdir().expect("temp dir");
        let index = ReportIndex::open(dir.path()).expect("open");
        let report = |seq: u64| Report {
            id: ReportId(Seq(seq)),
            origin: Origin::FeedItem { feed: "t".into() },
            received_at: chrono::Utc::now(),
            draft: ReportDraft::new(format!("replayed {seq}"), crate::model::Tlp::Green),
        };
        let mut ix = index.indexer().expect("writer");
        ix.add(&report(1)).expect("add");
        ix.add(&report(2)).expect("add");
        ix.commit().expect("commit");
        ix.add(&report(3)).expect("add");
        ix.add(&report(4)).expect("add");
        drop(ix); // the process ends before the commit
        let mut ix = index.indexer().expect("writer again");
        assert_eq!(ix.last(), Seq(2));
        for seq in 1..=4 {
            ix.add(&report(seq)).expect("add");
        }
        ix.commit().expect("commit");
        index.refresh().expect("refresh");
        let mut seqs: Vec<u64> = index
            .search("replayed", 10)
            .expect("search")
            .into_iter()
            .map(|(s, _)| s.0)
            .collect();
        seqs.sort();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }

    /// Reports that score alike come newest first, however the index is cut into segments
    /// (each of these commits makes a segment, and segments are ordered by random ids): two
    /// nodes holding the same reports give the secretariat the same order.
    #[test]
    fn equal_scores_come_newest_first_whatever_the_segments() {
        use crate::model::{Origin, Report, ReportDraft, ReportId};
        let dir = tempfile::tempdir().expect("temp dir");
        let index = ReportIndex::open(dir.path()).expect("open");
        let mut ix = index.indexer().expect("writer");
        for seq in 1..=12 {
            ix.add(&Report {
                id: ReportId(Seq(seq)),
                origin: Origin::FeedItem { feed: "t".into() },
                received_at: chrono::Utc::now(),
                draft: ReportDraft::new("same words", crate::model::Tlp::Green),
            })
            .expect("add");
            ix.commit().expect("commit");
        }
        index.refresh().expect("refresh");
        let hits = index.search("same words", 5).expect("search");
        let scores: Vec<f32> = hits.iter().map(|(_, s)| *s).collect();
        assert!(scores.windows(2).all(|w| w[0] == w[1]), "{scores:?}");
        let seqs: Vec<u64> = hits.iter().map(|(s, _)| s.0).collect();
        assert_eq!(seqs, vec![12, 11, 10, 9, 8]);
    }
}

#[cfg(test)]
mod visibility_tests {
    use super::*;
    use crate::model::{Indicator, Observable, ReportDraft, ReportId};

    fn member(id: &str) -> MemberId {
        MemberId(id.into())
    }

    /// Report `seq` of a mixed corpus: every report says "alpha", every 7th "beta", every
    /// 97th "gamma", three say "delta"; origins, TLPs, scopes and recipients vary.
    fn report(seq: u64) -> Report {
        let mut title = String::from("alpha");
        if seq.is_multiple_of(7) {
            title.push_str(" beta");
        }
        if seq.is_multiple_of(97) {
            title.push_str(" gamma");
        }
        if [5, 2_500, 5_999].contains(&seq) {
            title.push_str(" delta");
        }
        let tlp = Tlp::ALL[(seq % Tlp::ALL.len() as u64) as usize];
        let mut draft = ReportDraft::new(title, tlp);
        draft.scope = match seq % 11 {
            0 => Some(Scope::ProviderAndSecretariat),
            1 => Some(Scope::CouncilMembers),
            _ => None,
        };
        if tlp == Tlp::Red {
            draft.recipients = vec![member(["m1", "m2", "m3"][(seq % 3) as usize])];
        }
        draft.indicators = vec![Indicator {
            observable: Observable::parse_named("domain", &format!("host{}.example.com", seq % 50))
                .expect("domain"),
            comment: None,
            stix_id: None,
        }];
        Report {
            id: ReportId(Seq(seq)),
            origin: match seq % 4 {
                0 => Origin::FeedItem { feed: "f".into() },
                n => Origin::Submission {
                    member: member(&format!("m{n}")),
                },
            },
            received_at: chrono::Utc::now(),
            draft,
        }
    }

    fn filters(released: &ReleasedSet) -> Vec<DocFilter> {
        let class = |submission, tlp, scope| DocFilter::Class {
            submission,
            tlp,
            scope,
        };
        vec![
            DocFilter::Any,
            DocFilter::Or(vec![
                class(false, Tlp::Green, None),
                DocFilter::ProvidedBy(member("m1")),
            ]),
            // A class 2 member's shape: own, recipient, feed items, released submissions.
            DocFilter::Or(vec![
                DocFilter::ProvidedBy(member("m2")),
                DocFilter::Recipient(member("m2")),
                class(false, Tlp::Clear, None),
                class(false, Tlp::Amber, Some(Scope::CouncilMembers)),
                DocFilter::And(vec![
                    DocFilter::Released(released.clone()),
                    DocFilter::Or(vec![
                        class(true, Tlp::Green, None),
                        class(true, Tlp::Amber, None),
                    ]),
                ]),
            ]),
            DocFilter::And(vec![
                DocFilter::Not(Box::new(DocFilter::ProvidedBy(member("m3")))),
                DocFilter::Or(vec![
                    class(true, Tlp::Red, None),
                    class(false, Tlp::Red, None),
                ]),
            ]),
            DocFilter::Released(released.clone()),
        ]
    }

    fn compare(index: &ReportIndex, released: &ReleasedSet) -> usize {
        let mut nonempty = 0;
        for filter in filters(released) {
            for query in [
                "alpha",
                "beta",
                "gamma",
                "delta",
                "omega",
                "alpha beta",
                "beta OR gamma",
                "host7.example.com",
            ] {
                for limit in [0, 1, 3, 50, 1_000, 100_000] {
                    for ranking in [Ranking::Newest, Ranking::Relevance] {
                        let plain = index
                            .search_by(query, &filter, ranking, limit, Evaluation::Plain)
                            .expect("plain");
                        let cached = index
                            .search_visible(query, &filter, ranking, limit)
                            .expect("cached");
                        assert_eq!(cached, plain, "{query} {limit} {ranking:?} {filter:?}");
                        nonempty += usize::from(!plain.is_empty());
                    }
                }
            }
        }
        nonempty
    }

    /// The kept filters and the newest-first windows give exactly the hits, order and
    /// scores of the plain query: for several filters, queries (none, a few and most hits)
    /// and limits (above the hits too), over segments written by several threads, a merged
    /// segment (whose sequence numbers run in several stretches) and segments added later.
    #[test]
    fn cached_filters_and_windows_answer_exactly_as_the_plain_query() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = ReportIndex::open(dir.path()).expect("open");
        let mut ix = Indexer {
            writer: index
                .index
                .writer_with_num_threads(3, 3 * 15_000_000)
                .expect("writer"),
            fields: index.fields,
            last: Seq(0),
            pending: 0,
        };
        for seq in 1..=5_000 {
            ix.add(&report(seq)).expect("add");
            if seq % 1_000 == 0 {
                ix.commit().expect("commit");
            }
        }
        let ids = index.index.searchable_segment_ids().expect("segments");
        assert!(ids.len() >= 4, "{} segments", ids.len());
        ix.writer
            .merge(&ids[..ids.len() / 2])
            .wait()
            .expect("merge");
        index.refresh().expect("refresh");
        let searcher = index.reader.searcher();
        assert!(searcher.segment_readers().len() > 1);
        assert!(
            searcher
                .segment_readers()
                .iter()
                .any(|r| visibility::SeqRuns::of_segment(r) > 1),
            "no segment holds several runs"
        );
        let released: Arc<[Seq]> = (1..=5_000).step_by(3).map(Seq).collect();
        let released = ReleasedSet::of(released);
        assert!(compare(&index, &released) > 100);

        // Later reports: new segments next to those whose filters are kept.
        for seq in 5_001..=6_000 {
            ix.add(&report(seq)).expect("add");
        }
        ix.commit().expect("commit");
        index.refresh().expect("refresh");
        compare(&index, &released);
        // Another released set: evaluated afresh.
        let other = ReleasedSet::of((2..=6_000).step_by(5).map(Seq).collect());
        compare(&index, &other);
    }

    /// A versioned released set is read once per version: the kept filter answers the next
    /// searches of that version, and a new version is read again.
    #[test]
    fn the_released_set_is_read_only_when_its_version_changes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().expect("temp dir");
        let index = ReportIndex::open(dir.path()).expect("open");
        let mut ix = index.indexer().expect("writer");
        for seq in 1..=200 {
            ix.add(&report(seq)).expect("add");
        }
        ix.commit().expect("commit");
        index.refresh().expect("refresh");
        let reads = Arc::new(AtomicUsize::new(0));
        let set = |version: u64, seqs: Vec<Seq>| {
            let reads = reads.clone();
            ReleasedSet::versioned(version, move || {
                reads.fetch_add(1, Ordering::SeqCst);
                Ok(seqs.clone())
            })
        };
        let search = |set: ReleasedSet| -> Vec<u64> {
            index
                .search_visible("alpha", &DocFilter::Released(set), Ranking::Newest, 10)
                .expect("search")
                .into_iter()
                .map(|(s, _)| s.0)
                .collect()
        };
        assert_eq!(search(set(1, vec![Seq(3), Seq(9)])), vec![9, 3]);
        // Same version: the kept filter answers, the set is not read.
        assert_eq!(search(set(1, vec![Seq(3), Seq(9)])), vec![9, 3]);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert_eq!(
            search(set(2, vec![Seq(3), Seq(9), Seq(150)])),
            vec![150, 9, 3]
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // No release ever: nothing, without reading.
        assert_eq!(search(set(0, vec![])), Vec::<u64>::new());
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}

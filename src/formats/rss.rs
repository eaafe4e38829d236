//! RSS 1.0 (RDF), RSS 2.0 and Atom: advisory feeds (JVN iPedia, IPA/MyJVN, JPCERT/CC,
//! vendor notices).
//!
//! One item (entry) becomes one report: title, link, date, the item text, and the
//! observables extracted from title and text (plus CVE ids that JVN's `sec:references`
//! and `sec:identifier` carry). Reference URLs are NOT extracted: they point at vendor and
//! NVD pages, not at attacker infrastructure. A feed-level TLP marking
//! (`sec:handling/marking:Marking_Structure@color`, as MyJVN publishes) applies to every item.
//!
//! The document must be well-formed XML: attributes are checked too, so a malformed feed
//! fails with the line and column of the fault instead of yielding a silent partial list.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::extract::extract;
use super::json::parse_time;
use super::{FormatError, ParseContext, Parsed, utf8};
use crate::model::{Observable, ObservableKind, ReportDraft, Tlp};

const FORMAT: &str = "rss";

/// How deep elements may nest. Feeds nest a handful of levels; the tree is dropped and
/// walked recursively, which overflows a worker thread's stack at tens of thousands.
pub const MAX_DEPTH: usize = 256;

/// How many elements and attributes (together) a document may hold. Every one becomes a
/// tree node of about a hundred bytes, so 8 MB of `<a/>` (two million elements) took close
/// to 300 MB; real advisory feeds hold a few thousand (a 10,000-item RSS feed about
/// 150,000). The cap bounds the tree to a few tens of megabytes whatever the input.
pub const MAX_NODES: usize = 250_000;

/// A minimal element tree: feeds are small, and a tree makes the three dialects easy.
#[derive(Debug, Default)]
struct Node {
    /// Qualified name as written (`dc:date`).
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn local(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key || k.rsplit(':').next() == Some(key))
            .map(|(_, v)| v.as_str())
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn child_local(&self, local: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.local() == local)
    }

    fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    fn descendants<'a>(&'a self, out: &mut Vec<&'a Node>) {
        for c in &self.children {
            out.push(c);
            c.descendants(out);
        }
    }
}

fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text.as_bytes()[..pos];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = pos
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

fn parse_tree(text: &str) -> Result<Node, FormatError> {
    let mut reader = Reader::from_str(text);
    let xml_err = |pos: u64, message: String| {
        let (line, column) = line_col(text, pos as usize);
        FormatError::Xml {
            format: FORMAT,
            line,
            column,
            message,
        }
    };
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut nodes = 0usize;
    let too_many = |at: u64| {
        xml_err(
            at,
            format!("more than {MAX_NODES} elements and attributes; not an advisory feed"),
        )
    };
    loop {
        let tag_start = reader.buffer_position();
        let ev = reader
            .read_event()
            .map_err(|e| xml_err(reader.error_position(), e.to_string()))?;
        let pos = reader.buffer_position();
        let is_empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(s) | Event::Empty(s) => {
                nodes += 1;
                if nodes > MAX_NODES {
                    return Err(too_many(tag_start));
                }
                let mut node = Node {
                    name: s.name().into_inner().to_string(),
                    ..Node::default()
                };
                for a in s.attributes() {
                    let a = a.map_err(|e| {
                        // Attribute errors carry their offset from the character after '<'.
                        let at = attr_error_offset(&e).map_or(pos, |o| tag_start + 1 + o as u64);
                        xml_err(at, format!("in <{}>: {e}", node.name))
                    })?;
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| xml_err(pos, format!("in <{}>: {e}", node.name)))?;
                    nodes += 1;
                    if nodes > MAX_NODES {
                        return Err(too_many(tag_start));
                    }
                    node.attrs
                        .push((a.key.into_inner().to_string(), value.into_owned()));
                }
                if is_empty {
                    stack.last_mut().expect("root").children.push(node);
                } else if stack.len() > MAX_DEPTH {
                    return Err(xml_err(
                        tag_start,
                        format!("elements nest deeper than {MAX_DEPTH} levels"),
                    ));
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                let node = stack.pop().expect("reader checks end names");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Err(xml_err(pos, "unbalanced end tag".into())),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&name)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("&{name};")),
                    Err(e) => return Err(xml_err(pos, e.to_string())),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        let open = stack.last().map(|n| n.name.clone()).unwrap_or_default();
        return Err(xml_err(
            text.len() as u64,
            format!("document ends inside <{open}>"),
        ));
    }
    let mut root = stack.pop().expect("document node");
    root.children
        .pop()
        .filter(|_| root.children.is_empty())
        .ok_or_else(|| xml_err(0, "expected exactly one root element".into()))
}

fn attr_error_offset(e: &quick_xml::events::attributes::AttrError) -> Option<usize> {
    use quick_xml::events::attributes::AttrError::*;
    match e {
        ExpectedEq(p)
        | ExpectedValue(p)
        | UnquotedValue(p)
        | ExpectedQuote(p, _)
        | Duplicated(p, _) => Some(*p),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Drops HTML tags and collapses whitespace (RSS descriptions often carry HTML).
fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn feed_tlp(root: &Node) -> Option<Tlp> {
    let mut all = Vec::new();
    root.descendants(&mut all);
    all.into_iter()
        .filter(|n| n.local() == "Marking_Structure")
        .filter_map(|n| n.attr("color"))
        .filter_map(|c| c.parse().ok())
        .max()
}

/// Parses an RSS 1.0, RSS 2.0 or Atom document.
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<Parsed, FormatError> {
    let text = utf8(FORMAT, bytes)?;
    let root = parse_tree(text)?;
    let items: Vec<&Node> = match root.local() {
        "RDF" => root
            .children
            .iter()
            .filter(|c| c.local() == "item")
            .collect(),
        "rss" => root
            .child("channel")
            .map(|ch| ch.children.iter().filter(|c| c.name == "item").collect())
            .unwrap_or_default(),
        "feed" => root.children.iter().filter(|c| c.name == "entry").collect(),
        other => {
            return Err(FormatError::structure(
                FORMAT,
                format!("<{other}>"),
                "root element is not rss, rdf:RDF or feed",
            ));
        }
    };
    let tlp = feed_tlp(&root).unwrap_or(ctx.default_tlp);
    let mut parsed = Parsed::default();
    for (i, item) in items.into_iter().enumerate() {
        match item_draft(item, tlp) {
            Some(d) => {
                parsed.reports.push(d);
                parsed.kept(format!("item {}", i + 1));
            }
            None => {
                parsed.warnings.push(format!(
                    "item {} has neither title nor link; skipped",
                    i + 1
                ));
                parsed.skipped(format!("item {}", i + 1), "neither title nor link");
            }
        }
    }
    if parsed.reports.is_empty() {
        parsed.warnings.push("feed has no items".to_string());
    }
    Ok(parsed)
}

fn item_draft(item: &Node, tlp: Tlp) -> Option<ReportDraft> {
    let title = item.text_of("title").map(str::to_string);
    let link = item
        .children
        .iter()
        .filter(|c| c.name == "link")
        .find_map(|l| match l.attr("href") {
            Some(h) if matches!(l.attr("rel"), None | Some("alternate")) => Some(h.to_string()),
            Some(_) => None,
            None => Some(l.text.trim().to_string()).filter(|t| !t.is_empty()),
        })
        .or_else(|| item.attr("rdf:about").map(str::to_string));
    if title.is_none() && link.is_none() {
        return None;
    }
    let body = ["content:encoded", "description", "summary", "content"]
        .iter()
        .find_map(|n| item.text_of(n))
        .map(strip_html)
        .unwrap_or_default();
    let mut d = ReportDraft::new(
        title
            .clone()
            .unwrap_or_else(|| link.clone().unwrap_or_default()),
        tlp,
    );
    d.description = body;
    d.link = link.clone();
    d.observed_at = [
        "pubDate",
        "dc:date",
        "dcterms:issued",
        "published",
        "updated",
        "dcterms:modified",
    ]
    .iter()
    .find_map(|n| item.text_of(n).and_then(parse_time));
    d.external_id = ["guid", "id", "sec:identifier"]
        .iter()
        .find_map(|n| item.text_of(n))
        .map(str::to_string)
        .or(link);
    for c in item.children.iter().filter(|c| c.name == "category") {
        let t = c
            .attr("term")
            .or(c.attr("label"))
            .map(str::to_string)
            .unwrap_or_else(|| c.text.trim().to_string());
        if !t.is_empty() && !d.tags.contains(&t) {
            d.tags.push(t);
        }
    }
    // JVN: CVE ids in sec:references/@id and sec:identifier.
    let mut all = Vec::new();
    item.descendants(&mut all);
    for n in &all {
        if n.local() == "references"
            && let Some(o) = n
                .attr("id")
                .and_then(|id| Observable::parse(ObservableKind::Cve, id).ok())
        {
            d.push_observable(o, None);
        }
        if n.local() == "cpe" {
            let cpe = n.text.trim();
            let parts: Vec<&str> = cpe.split(':').collect();
            if parts.len() >= 4 {
                let tag = format!("cpe:{}:{}", parts[2], parts[3]);
                if !d.tags.contains(&tag) {
                    d.tags.push(tag);
                }
            }
        }
    }
    let mut text = String::new();
    text.push_str(title.as_deref().unwrap_or_default());
    text.push('\n');
    text.push_str(&d.description);
    // Atom sub-items (MyJVN sec:items/sec:item) add their titles and summaries.
    if let Some(items) = item.child_local("items") {
        for sub in &items.children {
            for n in ["sec:title", "sec:summary"] {
                if let Some(t) = sub.text_of(n) {
                    text.push('\n');
                    text.push_str(t);
                }
            }
        }
    }
    for o in extract(&text) {
        d.push_observable(o, None);
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss2_items_with_entities_and_html() {
        let p = parse(
            br#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
            <item><title>Alert &amp; CVE-2024-1234</title><link>https://example.org/a</link>
            <description><![CDATA[<p>C2 at <b>203.0.113.5</b></p>]]></description>
            <pubDate>Wed, 16 Sep 2020 15:54:06 +0000</pubDate><guid>id-1</guid></item>
            </channel></rss>"#,
            &ParseContext::default(),
        )
        .unwrap();
        let d = &p.reports[0];
        assert_eq!(d.title, "Alert & CVE-2024-1234");
        assert_eq!(d.description, "C2 at 203.0.113.5");
        assert_eq!(d.external_id.as_deref(), Some("id-1"));
        let keys: Vec<String> = d.indicators.iter().map(|i| i.observable.key()).collect();
        assert_eq!(keys, ["cve:CVE-2024-1234", "ipv4:203.0.113.5"]);
    }

    #[test]
    fn malformed_xml_says_where() {
        let err = parse(
            b"<rss><channel>\n<item a=1></item></channel></rss>",
            &ParseContext::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("rss: malformed XML at line 2"), "{err}");
        let err = parse(b"<rss><channel>", &ParseContext::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("malformed XML"), "{err}");
    }

    // Deep nesting must be an error, not a stack overflow: the tree is built without
    // recursion, but dropping and walking it recurse (parsers run on 2 MB threads).
    #[test]
    fn fuzz_deep_nesting_is_refused() {
        let depth = 40_000;
        let doc = format!(
            "<rss><channel><item><title>t</title>{}{}</item></channel></rss>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        let err = std::thread::spawn(move || {
            parse(doc.as_bytes(), &ParseContext::default()).map(|p| p.reports.len())
        })
        .join()
        .expect("no stack overflow");
        let err = err.unwrap_err().to_string();
        assert!(err.contains("nest deeper than"), "{err}");
    }
}

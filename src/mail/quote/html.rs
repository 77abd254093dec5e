//! The HTML cut: quote containers and what follows the quoted history, found in one
//! non-recursive walk of the html5ever tree (`markup5ever_rcdom`, the tree ammonia uses).

use std::collections::HashSet;
use std::rc::Rc;

use html5ever::serialize::{SerializeOpts, TraversalScope};
use html5ever::tendril::TendrilSink;
use markup5ever_rcdom::{Handle, Node, NodeData, RcDom, SerializableHandle};

use super::text;

/// Classes of quote containers (removed when nothing of the writer follows them).
const CONTAINER_CLASSES: &[&str] = &[
    "gmail_quote",
    "gmail_quote_container",
    "gmail_attr",
    "gmail_signature",
    "gmail_signature_prefix",
    "moz-cite-prefix",
    "moz-signature",
    "yahoo_quoted",
    "iosymail",
    "protonmail_quote",
    "tutanota_quote",
    "zmail_extra",
    "skiff_quote",
];

/// Ids of containers (Apple Mail's and Outlook mobile's signatures, Yahoo).
const CONTAINER_IDS: &[&str] = &["applemailsignature", "ms-outlook-mobile-signature"];

/// Ids where the quoted history starts (Outlook, Hotmail, Zimbra, Chinese webmails); an
/// `x_` prefix (a quoted copy) is the same.
const CUT_IDS: &[&str] = &[
    "divrplyfwdmsg",
    "appendonsend",
    "stopspelling",
    "olk_src_body_section",
    "mail-editor-reference-message-container",
    "zwchr",
    "isforwardcontent",
    "isreplycontent",
    "origbody",
    "reply139content",
    "orimsghtmlseperator",
];

/// Elements whose text is not shown.
const HIDDEN: &[&str] = &["head", "style", "script", "title", "template", "noscript"];

/// The HTML without its quoted history, not sanitised (the caller sanitises); the HTML
/// unchanged if nothing was recognised or nothing of the writer would be left.
pub fn cut_quoted_html(html: &str) -> String {
    let flat = flatten_deep(html);
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).one(&*flat);
    if !cut(&dom.document) || !has_content(&dom.document) {
        return flat.into_owned();
    }
    let mut out = Vec::with_capacity(html.len());
    let handle = SerializableHandle::from(dom.document.clone());
    let opts = SerializeOpts {
        traversal_scope: TraversalScope::ChildrenOnly(None),
        ..Default::default()
    };
    match html5ever::serialize(&mut out, &handle, opts) {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|_| html.to_string()),
        Err(_) => html.to_string(),
    }
}

/// `cut_quoted_html`, sanitised with ammonia's defaults (no scripts, no styles).
pub fn visible_html(html: &str) -> String {
    ammonia::clean(&cut_quoted_html(html))
}

enum Role {
    Container,
    CutHere,
    Other,
}

fn attr<'a>(attrs: &'a [html5ever::Attribute], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| &*a.name.local == name)
        .map(|a| &*a.value)
}

fn role(node: &Handle) -> Role {
    let NodeData::Element { name, attrs, .. } = &node.data else {
        return Role::Other;
    };
    let attrs = attrs.borrow();
    let tag = &*name.local;
    let id = attr(&attrs, "id").unwrap_or("").to_ascii_lowercase();
    let id = id.strip_prefix("x_").unwrap_or(&id);
    if CUT_IDS.contains(&id) {
        return Role::CutHere;
    }
    if let Some(marker) = attr(&attrs, "data-marker") {
        match marker {
            "__DIVIDER__" | "__HEADERS__" => return Role::CutHere,
            "__QUOTED_TEXT__" => return Role::Container,
            _ => {}
        }
    }
    if tag == "blockquote" || tag == "hr" {
        return Role::Container;
    }
    if CONTAINER_IDS.contains(&id) || id.starts_with("yahoo_quoted") {
        return Role::Container;
    }
    if let Some(class) = attr(&attrs, "class") {
        if class.split_ascii_whitespace().any(|c| {
            CONTAINER_CLASSES.iter().any(|k| c.eq_ignore_ascii_case(k))
                || c.eq_ignore_ascii_case("OutlookMessageHeader")
        }) {
            return Role::Container;
        }
    }
    if tag == "div" {
        let style = attr(&attrs, "style").unwrap_or("").to_ascii_lowercase();
        if style.contains("border-top") && style.contains("solid") {
            drop(attrs);
            if text::norm(&leading_text(node, 200)).is_some_and(|t| text::is_from_label(&t)) {
                return Role::CutHere;
            }
        }
    }
    Role::Other
}

/// The first `limit` bytes or so of a node's text, visiting a bounded number of nodes.
fn leading_text(node: &Handle, limit: usize) -> String {
    let mut out = String::new();
    let mut stack = vec![node.clone()];
    let mut visited = 0;
    while let Some(n) = stack.pop() {
        visited += 1;
        if visited > 64 || out.len() > limit {
            break;
        }
        match &n.data {
            NodeData::Text { contents } => {
                out.push_str(&contents.borrow());
            }
            NodeData::Element { name, .. } => {
                if &*name.local == "br" || &*name.local == "div" || &*name.local == "p" {
                    out.push(' ');
                }
                stack.extend(n.children.borrow().iter().rev().cloned());
            }
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_own_text(s: &str) -> bool {
    s.chars().any(|c| {
        !c.is_whitespace() && !matches!(c, '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}')
    })
}

/// Is a text node a line that ends the reply (our marker, a separator, a footer, a
/// delimiter)?
fn text_ends_reply(s: &str) -> bool {
    if text::is_marker(s) {
        return true;
    }
    let trimmed = s.trim();
    if trimmed.len() > 300 || trimmed.contains('\n') && trimmed.lines().count() > 1 {
        return false;
    }
    text::is_delimiter(trimmed)
        || text::norm(trimmed).is_some_and(|l| text::is_separator(&l) || text::is_footer(&l))
}

/// Removes the trailing quote containers and everything from the first cut point; true if
/// anything was removed.
/// Where a node is: its parent and its index there (`None` for the document).
type Place = Option<(Handle, usize)>;

fn cut(document: &Handle) -> bool {
    // Pre-order walk; containers are not entered (what is in them is quoted).
    enum Step {
        Enter(Handle, Place),
    }
    let mut stack = vec![Step::Enter(document.clone(), None)];
    let mut position = 0usize;
    let mut last_own: Option<usize> = None;
    let mut containers: Vec<(usize, Handle, Place)> = Vec::new();
    let mut cut_at: Option<(Handle, Place)> = None;
    while let Some(Step::Enter(node, place)) = stack.pop() {
        position += 1;
        match &node.data {
            NodeData::Text { contents } => {
                let contents = contents.borrow();
                if !is_own_text(&contents) {
                    continue;
                }
                if last_own.is_some() && text_ends_reply(&contents) {
                    // Cut from the element holding the line.
                    let target = place.as_ref().map(|(p, _)| p.clone()).and_then(|p| {
                        if is_named(&p, &["body", "html"]) {
                            return None;
                        }
                        let outer = parent_of(&p)?;
                        let index = index_in(&outer, &p)?;
                        Some((p, Some((outer, index))))
                    });
                    cut_at = Some(target.unwrap_or((node.clone(), place.clone())));
                    break;
                }
                last_own = Some(position);
            }
            NodeData::Element { name, .. } => {
                if HIDDEN.contains(&&*name.local) {
                    continue;
                }
                match role(&node) {
                    Role::Container => {
                        containers.push((position, node.clone(), place.clone()));
                        continue;
                    }
                    Role::CutHere if last_own.is_some() => {
                        cut_at = Some((node.clone(), place.clone()));
                        break;
                    }
                    _ => {}
                }
                if &*name.local == "img" {
                    last_own = Some(position);
                }
                push_children(&mut stack, &node, Step::Enter);
            }
            NodeData::Document => push_children(&mut stack, &node, Step::Enter),
            _ => {}
        }
    }
    let Some(last_own) = last_own else {
        return false;
    };
    let mut remove: HashSet<*const Node> = HashSet::new();
    let mut parents: Vec<Handle> = Vec::new();
    let mut mark = |node: &Handle, place: &Place, remove: &mut HashSet<*const Node>| {
        if let Some((parent, index)) = place {
            remove.insert(Rc::as_ptr(node));
            if let Some(attribution) = attribution_before(parent, *index) {
                remove.insert(Rc::as_ptr(&attribution));
            }
            parents.push(parent.clone());
        }
    };
    for (at, node, place) in &containers {
        if *at > last_own {
            mark(node, place, &mut remove);
        }
    }
    let mut changed = !remove.is_empty();
    let cut_at = cut_at.map(|(node, place)| climb(node, place));
    if let Some((_, Some((parent, index)))) = &cut_at {
        if let Some(attribution) = attribution_before(parent, *index) {
            remove.insert(Rc::as_ptr(&attribution));
            parents.push(parent.clone());
        }
    }
    if let Some((node, _)) = &cut_at {
        truncate_after(node);
        changed = true;
    }
    let mut seen: HashSet<*const Node> = HashSet::new();
    for parent in &parents {
        if seen.insert(Rc::as_ptr(parent)) {
            parent
                .children
                .borrow_mut()
                .retain(|c| !remove.contains(&Rc::as_ptr(c)));
        }
    }
    changed
}

/// The outermost element that starts with `node` (no text before it inside), below the
/// body: the cut point for a line our marker is on, so the attribution right before the
/// quoted mail is its sibling.
fn climb(mut node: Handle, mut place: Place) -> (Handle, Place) {
    for _ in 0..64 {
        let Some((parent, index)) = &place else { break };
        if !matches!(&parent.data, NodeData::Element { .. }) || is_named(parent, &["body", "html"])
        {
            break;
        }
        let first = parent.children.borrow()[..*index]
            .iter()
            .all(|c| match &c.data {
                NodeData::Text { contents } => !is_own_text(&contents.borrow()),
                NodeData::Element { name, .. } => &*name.local == "br",
                NodeData::Comment { .. } => true,
                _ => false,
            });
        if !first {
            break;
        }
        let Some(grand) = parent_of(parent) else {
            break;
        };
        let Some(i) = index_in(&grand, parent) else {
            break;
        };
        node = parent.clone();
        place = Some((grand, i));
    }
    (node, place)
}

fn push_children<S>(stack: &mut Vec<S>, node: &Handle, step: impl Fn(Handle, Place) -> S) {
    let children = node.children.borrow();
    for (i, child) in children.iter().enumerate().rev() {
        stack.push(step(child.clone(), Some((node.clone(), i))));
    }
}

fn is_named(node: &Handle, names: &[&str]) -> bool {
    matches!(&node.data, NodeData::Element { name, .. } if names.contains(&&*name.local))
}

fn parent_of(node: &Handle) -> Option<Handle> {
    let weak = node.parent.take();
    let parent = weak.as_ref().and_then(|w| w.upgrade());
    node.parent.set(weak);
    parent
}

fn index_in(parent: &Handle, child: &Handle) -> Option<usize> {
    parent
        .children
        .borrow()
        .iter()
        .position(|c| Rc::ptr_eq(c, child))
}

/// The sibling right before `parent.children[index]` (skipping blank text and `<br>`),
/// if its text is an attribution ("On … wrote:", "03.03.2026, 10:04, Ann <a@x>:").
fn attribution_before(parent: &Handle, index: usize) -> Option<Handle> {
    let children = parent.children.borrow();
    for i in (index.saturating_sub(4)..index).rev() {
        let sibling = &children[i];
        match &sibling.data {
            NodeData::Text { contents } if !is_own_text(&contents.borrow()) => continue,
            NodeData::Element { name, .. } if &*name.local == "br" => continue,
            NodeData::Text { .. } | NodeData::Element { .. } => {
                let text = leading_text(sibling, 500);
                return text::norm(&text)
                    .filter(|t| text::is_attribution(t))
                    .map(|_| sibling.clone());
            }
            _ => return None,
        }
    }
    None
}

/// Removes `node`, its following siblings and the following siblings of its ancestors.
fn truncate_after(node: &Handle) {
    let mut current = node.clone();
    let mut inclusive = true;
    while let Some(parent) = parent_of(&current) {
        if let Some(index) = index_in(&parent, &current) {
            let keep = if inclusive { index } else { index + 1 };
            parent.children.borrow_mut().truncate(keep);
        }
        inclusive = false;
        current = parent;
    }
}

/// Is any text (or image) of the body left?
fn has_content(document: &Handle) -> bool {
    let mut stack = vec![document.clone()];
    while let Some(node) = stack.pop() {
        match &node.data {
            NodeData::Text { contents } if is_own_text(&contents.borrow()) => return true,
            NodeData::Element { name, .. } => {
                if &*name.local == "img" {
                    return true;
                }
                if !HIDDEN.contains(&&*name.local) {
                    stack.extend(node.children.borrow().iter().cloned());
                }
            }
            NodeData::Document => stack.extend(node.children.borrow().iter().cloned()),
            _ => {}
        }
    }
    false
}

/// Deeper nesting than this is flattened before parsing: html5ever's tree builder scans
/// the stack of open elements on many tags, so a hostile 1 MB of `<div>` would be
/// quadratic (20,000 levels took seconds). No mail client nests anywhere near this.
const MAX_DEPTH: usize = 400;

/// Tags that never hold children, or whose end tag is usually implied: they do not count
/// towards the nesting depth.
const FLAT_TAGS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "p", "li", "td", "th", "tr", "option", "dt", "dd", "tbody", "thead", "tfoot",
    "colgroup", "optgroup", "rb", "rt", "rp", "!doctype",
];

/// Raw-text elements: their content is skipped up to their end tag.
const RAW_TAGS: &[&str] = &["script", "style", "textarea", "title", "xmp", "noscript"];

/// The HTML with start tags beyond `MAX_DEPTH` levels (and as many end tags) left out;
/// borrowed unchanged when it is not that deep. One pass, approximate on purpose (it
/// only has to bound the depth, the parser does the rest).
pub(super) fn flatten_deep(html: &str) -> std::borrow::Cow<'_, str> {
    let b = html.as_bytes();
    let mut depth = 0usize;
    let mut dropped = 0usize;
    let mut out: Option<String> = None;
    let mut copied = 0usize;
    let mut i = 0usize;
    while let Some(off) = memchr::memchr(b'<', &b[i..]) {
        let lt = i + off;
        let rest = &b[lt + 1..];
        if rest.starts_with(b"!--") {
            i = memchr::memmem::find(&b[lt..], b"-->").map_or(b.len(), |e| lt + e + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = lt + 1 + usize::from(closing);
        let name_len = b[name_start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'!' || **c == b'-')
            .count();
        if name_len == 0 || !b[name_start].is_ascii_alphabetic() && b[name_start] != b'!' {
            i = lt + 1;
            continue;
        }
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let end = tag_end(b, name_start + name_len);
        let self_closing = end >= 2 && b[end - 2] == b'/';
        i = end;
        let flat = FLAT_TAGS.contains(&name.as_str()) || self_closing;
        let raw = RAW_TAGS.contains(&name.as_str());
        let mut drop_tag = false;
        if closing {
            if raw {
                // Never dropped: its start tag never is.
                depth = depth.saturating_sub(1);
            } else if !flat {
                if dropped > 0 && depth >= MAX_DEPTH {
                    dropped -= 1;
                    drop_tag = true;
                } else {
                    depth = depth.saturating_sub(1);
                }
            }
        } else if raw {
            // Counted like any element (its end tag comes back down), content skipped.
            depth += 1;
            let close = format!("</{name}");
            i = find_ascii_ci(&b[end..], close.as_bytes()).map_or(b.len(), |e| end + e);
        } else if !flat {
            if depth >= MAX_DEPTH {
                dropped += 1;
                drop_tag = true;
            } else {
                depth += 1;
            }
        }
        if drop_tag {
            let buf = out.get_or_insert_with(|| String::with_capacity(html.len()));
            buf.push_str(&html[copied..lt]);
            copied = end;
        }
    }
    match out {
        None => std::borrow::Cow::Borrowed(html),
        Some(mut buf) => {
            buf.push_str(&html[copied..]);
            std::borrow::Cow::Owned(buf)
        }
    }
}

/// Where a tag starting before `from` ends (after its `>`), skipping quoted attribute
/// values.
fn tag_end(b: &[u8], from: usize) -> usize {
    let mut quote: Option<u8> = None;
    for (k, &c) in b.iter().enumerate().skip(from) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => return k + 1,
            None => {}
        }
    }
    b.len()
}

/// ASCII case-insensitive search of `needle` (lowercase) in `hay`.
fn find_ascii_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while let Some(off) = memchr::memchr2(first, first.to_ascii_uppercase(), &hay[i..]) {
        let at = i + off;
        if hay.len() - at >= needle.len() && hay[at..at + needle.len()].eq_ignore_ascii_case(needle)
        {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

//! HTML mail as the portal shows it: sanitised by ammonia (no script, handler, form,
//! frame, style or SVG survives), `cid:` images pointed at their attachments, and remote
//! images removed unless the viewer asked for them for this message. What the sanitiser
//! lets through is also held by the page's Content-Security-Policy.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct Rendered {
    pub html: String,
    /// Remote images were removed (the page offers to show them).
    pub blocked_remote: bool,
}

/// `https://…`, `mailto:…`: an absolute URL (ammonia then checks the scheme).
fn has_scheme(url: &str) -> bool {
    url.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

pub fn render(
    html: &str,
    message_id: i64,
    content_ids: &HashSet<String>,
    allow_remote: bool,
) -> Rendered {
    let blocked = Arc::new(AtomicBool::new(false));
    let seen_blocked = blocked.clone();
    let cids: HashSet<String> = content_ids.clone();
    let mut builder = ammonia::Builder::default();
    builder
        .url_relative(ammonia::UrlRelative::PassThrough)
        .attribute_filter(move |element, attribute, value| {
            let value = value.trim();
            if element == "img" && attribute == "src" {
                if let Some(cid) = value.strip_prefix("cid:") {
                    let cid = cid.trim_matches(['<', '>']);
                    return cids.contains(cid).then(|| {
                        Cow::Owned(format!(
                            "/portal/messages/{message_id}/cid/{}",
                            crate::web::view::url_encode(cid)
                        ))
                    });
                }
                if allow_remote && has_scheme(value) {
                    return Some(Cow::Owned(value.to_string()));
                }
                seen_blocked.store(true, Ordering::Relaxed);
                return None;
            }
            // A relative link in a mail would point into the portal itself: dropped.
            if matches!(attribute, "href" | "src" | "cite" | "longdesc") && !has_scheme(value) {
                return None;
            }
            Some(Cow::Owned(value.to_string()))
        });
    // `cid:` passes the scheme check, then the filter above points it at our own path.
    let schemes: HashSet<&str> = ["http", "https", "mailto", "tel", "cid"]
        .into_iter()
        .collect();
    builder.url_schemes(schemes);
    let html = builder.clean(html).to_string();
    Rendered {
        html,
        blocked_remote: blocked.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(html: &str, remote: bool) -> Rendered {
        let cids: HashSet<String> = ["logo@x".to_string()].into_iter().collect();
        render(html, 7, &cids, remote)
    }

    #[test]
    fn scripts_handlers_forms_frames_styles_and_svg_go() {
        let out = show(
            r#"<p onclick="alert(1)">Hi</p><script>alert(2)</script><style>body{display:none}</style>
            <form action="https://evil"><input name=x></form><iframe src="https://evil"></iframe>
            <svg onload="alert(3)"><circle/></svg><a href="javascript:alert(4)">x</a>
            <div style="position:fixed;top:0">overlay</div>"#,
            false,
        )
        .html;
        for bad in [
            "onclick",
            "<script",
            "alert(2)",
            "<style",
            "<form",
            "<input",
            "<iframe",
            "<svg",
            "javascript:",
            "style=",
        ] {
            assert!(!out.contains(bad), "{bad} survived: {out}");
        }
        assert!(out.contains("Hi") && out.contains("overlay"));
    }

    #[test]
    fn remote_images_wait_for_the_viewer_and_cid_images_point_home() {
        let html = r#"<img src="https://tracker.example/p.gif"><img src="cid:logo@x"><img src="cid:unknown">"#;
        let blocked = show(html, false);
        assert!(blocked.blocked_remote);
        assert!(
            !blocked.html.contains("tracker.example"),
            "{}",
            blocked.html
        );
        assert!(
            blocked
                .html
                .contains(r#"src="/portal/messages/7/cid/logo%40x""#),
            "{}",
            blocked.html
        );
        assert!(!blocked.html.contains("unknown"));
        let relative = show(
            r#"<a href="/portal/logout">x</a><img src="/portal/tickets">"#,
            true,
        );
        assert!(!relative.html.contains("/portal/"), "{}", relative.html);
        let allowed = show(html, true);
        assert!(allowed.html.contains("https://tracker.example/p.gif"));
    }
}

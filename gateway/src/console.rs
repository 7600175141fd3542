//! The web console: a page at `/` and its assets under `/console/`, compiled into the
//! binary (`include_str!`: no Node toolchain, no files on disk), plus `POST /console/render`,
//! which turns Markdown into HTML that is safe to insert into the page.
//!
//! - The page is plain HTML, CSS and JavaScript modules (no build step). It uses the
//!   gateway's public fronts exactly as any client does: `GET /agents` and the agent cards,
//!   the WebSocket front (`?A2A-Version=1.0`, as browsers cannot set headers on a
//!   WebSocket), the REST front for `ListTasks`, and `…/tasks/{id}:subscribe` read with
//!   `fetch` (so it can send `A2A-Version` and `Last-Event-ID`).
//! - Every console answer carries a strict `Content-Security-Policy` (scripts from this
//!   origin only, no inline script, no plugins, no framing): even markup that slipped through
//!   could not run script.
//! - Markdown (agent output) is rendered here, not in the page: pulldown-cmark (CommonMark +
//!   tables + strikethrough) to HTML, then the `ammonia` sanitizer (an allow-list of tags and
//!   attributes built on html5ever; `<script>`, event-handler attributes, `javascript:` URLs
//!   and the like are removed; links get `rel="noopener noreferrer"`). Raw HTML inside the
//!   Markdown goes through the same sanitizer.

use axum::{
    Extension,
    body::Body,
    extract::{Path, State},
    response::{IntoResponse as _, Response},
};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::{
    app::AppState,
    error::{ApiError, Failure},
    layers::body_limit::{MaxBody, read_body},
};

/// One embedded file.
struct Asset {
    /// The name under `/console/`.
    name: &'static str,
    /// `Content-Type`.
    media_type: &'static str,
    body: &'static str,
}

/// The page served at `/`.
const INDEX: &str = include_str!("../console/index.html");

/// The files under `/console/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "console.css",
        media_type: "text/css; charset=utf-8",
        body: include_str!("../console/console.css"),
    },
    Asset {
        name: "app.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/app.js"),
    },
    Asset {
        name: "api.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/api.js"),
    },
    Asset {
        name: "chat.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/chat.js"),
    },
    Asset {
        name: "tasks.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/tasks.js"),
    },
    Asset {
        name: "sse.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/sse.js"),
    },
    Asset {
        name: "view.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/view.js"),
    },
];

/// The console's `Content-Security-Policy`: everything from this origin only (`connect-src
/// 'self'` covers same-origin `ws:`/`wss:` in CSP Level 3), no inline script or style, no
/// plugins, no `<base>`, no framing by other sites, forms post only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A console answer: `body` as `media_type`, revalidated on every load (the files change with
/// the binary), never sniffed, with [`CSP`].
fn answer(media_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// `GET /`: the console page.
pub(crate) async fn index() -> Response {
    answer("text/html; charset=utf-8", INDEX)
}

/// `GET /console/{file}`: an embedded asset.
///
/// # Errors
/// 404 (the REST envelope, as for any unknown route) for a name that is not embedded.
pub(crate) async fn asset(Path(file): Path<String>) -> Result<Response, Failure> {
    ASSETS
        .iter()
        .find(|a| a.name == file)
        .map(|a| answer(a.media_type, a.body))
        .ok_or_else(|| {
            Failure::rest(ApiError::MethodNotFound(format!(
                "no route GET /console/{file}"
            )))
        })
}

/// `POST /console/render`: the body, UTF-8 Markdown (`Content-Type` `text/markdown`,
/// `text/plain` or none), as a sanitized HTML fragment (`text/html`). The body is bounded by
/// `max_body_bytes` like every request body.
///
/// # Errors
/// 400 for another content type or a body that is not UTF-8; 413 / 408 for a body too large
/// or too slow.
pub(crate) async fn render(
    State(state): State<AppState>,
    headers: HeaderMap,
    max: Option<Extension<MaxBody>>,
    body: Body,
) -> Result<Response, Failure> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
    let media = media
        .as_deref()
        .map(|m| m.split(';').next().unwrap_or_default().trim());
    if !matches!(media, None | Some("" | "text/markdown" | "text/plain")) {
        return Err(Failure::rest(ApiError::InvalidRequest(format!(
            "content type {:?} is not supported; send the Markdown as text/markdown",
            media.unwrap_or_default()
        ))));
    }
    let limit = max.map_or(state.config.max_body_bytes, |m| m.0.0);
    let bytes = read_body(body, limit, state.config.body_read_timeout)
        .await
        .map_err(Failure::rest)?;
    let markdown = std::str::from_utf8(&bytes).map_err(|_| {
        Failure::rest(ApiError::InvalidRequest(
            "the Markdown is not valid UTF-8".into(),
        ))
    })?;
    let mut response = answer("text/html; charset=utf-8", markdown_to_safe_html(markdown));
    *response.status_mut() = StatusCode::OK;
    Ok(response.into_response())
}

/// Markdown (CommonMark with tables and strikethrough) as an HTML fragment with nothing that
/// can run script: rendered by pulldown-cmark, then cleaned by ammonia's default allow-list.
pub(crate) fn markdown_to_safe_html(markdown: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, options));
    ammonia::clean(&unsafe_html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_html_without_any_way_to_run_script() {
        let html = markdown_to_safe_html(
            "# Report\n\nSome *text* and a [link](https://example.com).\n\n\
             | a | b |\n|---|---|\n| 1 | 2 |\n\n\
             <script>alert(1)</script>\n\n\
             <img src=x onerror=alert(2)>\n\n\
             [click](javascript:alert(3)) <a href=\"javascript:alert(4)\">x</a>\n\n\
             <iframe src=\"https://evil.example\"></iframe><style>body{}</style>\n\n\
             `<script>` in code stays text",
        );
        assert!(html.contains("<h1>Report</h1>"), "{html}");
        assert!(html.contains("<em>text</em>"), "{html}");
        assert!(
            html.contains("<table>") && html.contains("<td>1</td>"),
            "{html}"
        );
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        assert!(html.contains("rel=\"noopener noreferrer\""), "{html}");
        assert!(html.contains("<code>&lt;script&gt;</code>"), "{html}");
        let lower = html.to_ascii_lowercase();
        for bad in [
            "<script",
            "onerror",
            "javascript:",
            "<iframe",
            "<style",
            "alert(1)",
        ] {
            assert!(!lower.contains(bad), "{bad} in {html}");
        }
    }

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{}", a.name);
        }
        for needle in ["/console/console.css", "/console/app.js"] {
            assert!(INDEX.contains(needle), "{needle}");
        }
        // Each module the scripts import is embedded.
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let name = line
                    .rsplit_once("\"./")
                    .and_then(|(_, n)| n.split_once('"'))
                    .map(|(n, _)| n)
                    .expect("import … from \"./x.js\"");
                assert!(ASSETS.iter().any(|b| b.name == name), "{name}");
            }
        }
    }
}

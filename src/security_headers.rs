//! Security headers on every response, set once at the edge.
//!
//! HTML that Muster renders (the invitation page, the Swagger UI at
//! `/docs`) gets a Content-Security-Policy without `unsafe-inline`: its
//! inline `<script>` and `<style>` elements are allowed by their SHA-256
//! hashes, computed from the response itself, so a template change can
//! never leave the policy behind, and an injected element never matches.

use std::sync::Arc;

use base64::Engine as _;
use poem::http::HeaderValue;
use poem::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};

/// What the edge adds, decided once from the configuration.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    /// HSTS only when Muster is reached over HTTPS: over plain HTTP the
    /// header would be ignored, and a wrong one locks browsers out.
    hsts: bool,
}

impl SecurityHeaders {
    pub fn new(public_url: &str) -> SecurityHeaders {
        SecurityHeaders {
            hsts: public_url.starts_with("https://"),
        }
    }
}

pub async fn around<E: Endpoint>(
    headers: Arc<SecurityHeaders>,
    endpoint: Arc<E>,
    req: Request,
) -> poem::Result<Response> {
    let api = req.uri().path().starts_with("/api/");
    // The console's pages use its stylesheet and script, files of Muster's own.
    let console = req.uri().path() == "/console" || req.uri().path().starts_with("/console/");
    let mut response = endpoint.call(req).await?.into_response();
    let is_html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        let (parts, body) = response.into_parts();
        let html = body.into_bytes().await.map_err(poem::Error::from)?;
        let policy = policy_for(&html, console);
        response = Response::from_parts(parts, Body::from(html));
        if let Ok(policy) = HeaderValue::from_str(&policy) {
            response
                .headers_mut()
                .insert(CONTENT_SECURITY_POLICY, policy);
        }
        response
            .headers_mut()
            .insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    let set = response.headers_mut();
    set.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The console checks its forms' `Origin`, which browsers send as
    // `null` under `no-referrer`; `same-origin` still tells other sites
    // nothing, and console URLs hold no secrets.
    let referrer_policy = if console {
        "same-origin"
    } else {
        "no-referrer"
    };
    set.insert(REFERRER_POLICY, HeaderValue::from_static(referrer_policy));
    // API answers are one caller's (and some carry secrets shown once).
    if api && !set.contains_key(CACHE_CONTROL) {
        set.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if headers.hsts {
        set.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    Ok(response)
}

/// The policy for one HTML document: nothing but its own inline scripts
/// and styles (by hash), same-origin fetches (the Swagger UI reads
/// `/openapi.json`), images from itself or `data:` URLs, and forms that
/// post back to Muster.
/// `own_files` adds `'self'` to `script-src` and `style-src`, for pages
/// that load a script and stylesheet Muster serves (the console) rather
/// than inline them.
pub fn policy_for(html: &[u8], own_files: bool) -> String {
    let text = String::from_utf8_lossy(html);
    let mut scripts = hashes(&inline_elements(&text, "script"));
    let mut styles = hashes(&inline_elements(&text, "style"));
    if own_files {
        scripts = format!("'self' {scripts}").trim_end().to_owned();
        styles = format!("'self' {styles}").trim_end().to_owned();
    }
    let source = |hashes: &str| {
        if hashes.is_empty() {
            "'none'".to_owned()
        } else {
            hashes.to_owned()
        }
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        source(&scripts),
        source(&styles),
    )
}

fn hashes(contents: &[&str]) -> String {
    let mut sources: Vec<String> = contents
        .iter()
        .map(|content| {
            let digest = Sha256::digest(content.as_bytes());
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    sources.sort();
    sources.dedup();
    sources.join(" ")
}

/// The text of every inline `<tag …>…</tag>` element, in order. An element
/// ends at the first `</tag`: HTML gives script and style raw text, so the
/// same words inside them (Swagger UI's code mentions `<script`) are
/// skipped with the element.
fn inline_elements<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}");
    let close = format!("</{tag}");
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        // `<scripts>` or `<style-x>` are other tags.
        if !after.starts_with(['>', ' ', '\t', '\n', '\r', '/']) {
            rest = after;
            continue;
        }
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let attributes = &after[..tag_end];
        let body = &after[tag_end + 1..];
        let Some(end) = body.find(&close) else {
            break;
        };
        // A script with a `src` is not inline; its text does not count.
        if !attributes.contains("src=") {
            found.push(&body[..end]);
        }
        rest = &body[end + close.len()..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_and_styles_are_found_whole() {
        let html = "<html><style>a{b:c}</style><script>if (x < 1) { s = \"<script\" }</script>\
                    <script src=\"/x.js\"></script><scripts>not</scripts><script type=\"module\">m()</script>";
        assert_eq!(
            inline_elements(html, "script"),
            ["if (x < 1) { s = \"<script\" }", "m()"]
        );
        assert_eq!(inline_elements(html, "style"), ["a{b:c}"]);
    }

    #[test]
    fn the_policy_allows_exactly_the_documents_own_inline_code() {
        let policy = policy_for(b"<style>p{}</style><p>no script</p>", false);
        assert!(policy.contains("script-src 'none'"), "{policy}");
        // echo -n 'p{}' | openssl dgst -sha256 -binary | base64
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"p{}"));
        assert!(
            policy.contains(&format!("style-src 'sha256-{expected}'")),
            "{policy}"
        );
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("unsafe-inline"));
        assert!(!policy.contains("'self' 'sha256"), "{policy}");
    }

    #[test]
    fn console_pages_may_load_only_muster_s_own_files() {
        let policy = policy_for(
            b"<link rel=\"stylesheet\" href=\"/console/static/console.css\">",
            true,
        );
        assert!(policy.contains("style-src 'self';"), "{policy}");
        assert!(policy.contains("script-src 'self';"), "{policy}");
    }
}

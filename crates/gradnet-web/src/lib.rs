//! The web console, served by every node at `/`: the explorer and the
//! playground talk to the node's own API and, on a validator, to its
//! JSON-RPC at `/rpc`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

include!(concat!(env!("OUT_DIR"), "/files.rs"));

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// A file of the console, if there is one at `path`.
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

fn serve(path: &str) -> Response {
    let Some(body) = file(path) else {
        return (StatusCode::NOT_FOUND, "no such file in the console").into_response();
    };
    // hashed asset names never change content; the page itself always may
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// `GET /` and `GET /assets/*`.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route(
            "/assets/{*file}",
            get(
                |axum::extract::Path(file): axum::extract::Path<String>| async move {
                    serve(&format!("assets/{file}"))
                },
            ),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_is_embedded_and_links_only_its_own_assets() {
        let index = std::str::from_utf8(file("index.html").expect("index.html")).unwrap();
        assert!(index.contains("<main id=\"app\">"));
        let assets: Vec<&str> = FILES
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| p.starts_with("assets/"))
            .collect();
        assert!(
            assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css"))
        );
        for a in &assets {
            assert!(
                index.contains(&format!("/{a}")),
                "{a} is not linked from index.html"
            );
        }
        // nothing from the internet
        assert!(
            !index.contains("http://") && !index.contains("https://"),
            "{index}"
        );
    }
}

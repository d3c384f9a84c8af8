//! The HTTP server loop, hardened for strangers: a cap on open connections
//! (in all and per client address), a deadline for a request's headers, an
//! idle deadline between pieces of a body, and a request rate per client
//! address answered with 429 and `Retry-After` past its burst.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tower::Service;

use crate::error::ApiError;
use crate::rate::{RateLimiter, Refusal};

/// Limits on what one client can hold or ask of the server.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Open connections in all; past it new ones are closed at once.
    pub max_connections: usize,
    /// Open connections from one address.
    pub max_connections_per_ip: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Time a client may pause in the middle of a request body.
    pub body_idle_timeout: Duration,
    /// Requests per second one address may make (0: no limit).
    pub requests_per_ip: u32,
    /// Requests one address may make at once above its rate.
    pub burst_per_ip: u32,
    /// Addresses the rate and per-address connection limits do not apply to
    /// (a reverse proxy in front of the node, its own tools).
    pub trusted: Vec<IpAddr>,
    /// TLS on the same port: a connection that opens with a TLS handshake
    /// is served over TLS with this configuration, any other as plain HTTP.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 8192,
            max_connections_per_ip: 256,
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            requests_per_ip: 200,
            burst_per_ip: 400,
            trusted: vec![
                IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ],
            tls: None,
        }
    }
}

/// Open connections, in all and per address.
#[derive(Default)]
struct Conns {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Releases a connection's place when it closes.
struct Place {
    conns: Arc<Mutex<Conns>>,
    ip: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut c = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

fn admit(conns: &Arc<Mutex<Conns>>, ip: IpAddr, limits: &ServerLimits) -> Option<Place> {
    let mut c = conns.lock().unwrap_or_else(|p| p.into_inner());
    let mine = c.per_ip.get(&ip).copied().unwrap_or(0);
    if c.total >= limits.max_connections
        || (mine >= limits.max_connections_per_ip && !limits.trusted.contains(&ip))
    {
        return None;
    }
    c.total += 1;
    *c.per_ip.entry(ip).or_default() += 1;
    Some(Place {
        conns: conns.clone(),
        ip,
    })
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then
/// lets in-flight requests finish.
pub async fn serve_limited(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // every unknown path and method answers with a JSON body naming it
    let app = app
        .fallback(unknown_url)
        .method_not_allowed_fallback(method_not_allowed);
    let limits = Arc::new(limits);
    let conns = Arc::new(Mutex::new(Conns::default()));
    let rate = Arc::new(RateLimiter::new(
        limits.requests_per_ip,
        limits.burst_per_ip,
    ));
    let mut http = Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let http = Arc::new(http);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // out of file descriptors and the like: back off, keep serving
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(place) = admit(&conns, peer.ip(), &limits) else {
            tracing::debug!(%peer, "connection refused: connection limit");
            drop(stream);
            continue;
        };
        // responses go out as soon as they are written (no Nagle delay
        // between the headers and the body)
        let _ = stream.set_nodelay(true);
        let trusted = limits.trusted.contains(&peer.ip());
        let (app, rate, idle) = (app.clone(), rate.clone(), limits.body_idle_timeout);
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let mut app = app.clone();
            let refused = if trusted {
                None
            } else {
                rate.check(peer.ip()).err()
            };
            async move {
                if let Some(r) = refused {
                    return Ok(rate_limited(r, "this address"));
                }
                // a client that stalls mid-body is cut off after `idle`
                let mut req = req
                    .map(|b| axum::body::Body::new(tower_http::timeout::TimeoutBody::new(idle, b)));
                req.extensions_mut().insert(ConnectInfo(peer));
                app.call(req).await
            }
        });
        let watcher = graceful.watcher();
        let (http, tls, handshake) = (http.clone(), limits.tls.clone(), limits.header_timeout);
        tokio::spawn(async move {
            let _place = place;
            // a TLS client speaks first, with a handshake record (0x16)
            let mut first = [0u8; 1];
            let tls = match tls {
                Some(cfg) => match tokio::time::timeout(handshake, stream.peek(&mut first)).await {
                    Ok(Ok(1)) if first[0] == 0x16 => Some(cfg),
                    Ok(Ok(_)) => None,
                    _ => return,
                },
                None => None,
            };
            match tls {
                Some(cfg) => {
                    let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(stream);
                    let Ok(Ok(stream)) = tokio::time::timeout(handshake, accept).await else {
                        tracing::debug!(%peer, "TLS handshake failed or timed out");
                        return;
                    };
                    let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
                None => {
                    let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// 429 `rate_limited` with `Retry-After`, for `who`.
pub(crate) fn rate_limited(r: Refusal, who: &str) -> axum::response::Response {
    let secs = r.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut resp = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "{who} is over its limit of {} requests per second (burst {}); retry in {secs} s",
            r.rate, r.burst
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, secs.into());
    resp
}

async fn unknown_url(method: axum::http::Method, uri: axum::http::Uri) -> crate::error::ApiError {
    crate::error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "unknown_url",
        format!("Unknown request URL: {method} {}", uri.path()),
    )
}

async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> crate::error::ApiError {
    crate::error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

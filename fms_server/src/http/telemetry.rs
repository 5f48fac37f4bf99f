//! HTTP metrics: requests by method, route and status, latency histograms by route, and the
//! rate-limit and authentication failure counters, in Prometheus text form.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Histogram bucket bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Tables {
    requests: HashMap<(String, String, u16), u64>,
    latency: HashMap<(String, String), Histogram>,
}

#[derive(Debug, Default)]
pub struct HttpMetrics {
    tables: Mutex<Tables>,
    rate_limited: AtomicU64,
    auth_failures: AtomicU64,
}

impl HttpMetrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, secs: f64) {
        let mut t = self
            .tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t.requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_insert(0) += 1;
        t.latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default()
            .observe(secs);
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the Prometheus text of these metrics to `out`.
    pub fn render(&self, out: &mut String) {
        let t = self
            .tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# HELP fms_http_requests_total HTTP requests by method, route and status.\n# TYPE fms_http_requests_total counter"
        );
        let mut rows: Vec<_> = t.requests.iter().collect();
        rows.sort();
        for ((method, route, status), n) in rows {
            let _ = writeln!(
                out,
                "fms_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP fms_http_request_duration_seconds HTTP request latency by method and route.\n# TYPE fms_http_request_duration_seconds histogram"
        );
        let mut rows: Vec<_> = t.latency.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for ((method, route), h) in rows {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "fms_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "fms_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\nfms_http_request_duration_seconds_sum{{{labels}}} {}\nfms_http_request_duration_seconds_count{{{labels}}} {}",
                h.count, h.sum, h.count
            );
        }
        for (name, help, v) in [
            (
                "fms_http_rate_limited_total",
                "Requests refused with 429.",
                self.rate_limited.load(Ordering::Relaxed),
            ),
            (
                "fms_auth_failures_total",
                "Requests refused with 401 or 403.",
                self.auth_failures.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
    }
}

/// Middleware: times every request and counts it under its route template (`/api/tasks/{id}`,
/// never the raw path, so the label set stays small; unmatched paths count as `other`).
pub async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".to_owned());
    let response = next.run(req).await;
    st.http_metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = HttpMetrics::default();
        m.observe("GET", "/api/robots", 200, 0.003);
        m.observe("GET", "/api/robots", 200, 0.2);
        m.observe("POST", "/api/tasks", 429, 0.0001);
        m.rate_limited();
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "fms_http_requests_total{method=\"GET\",route=\"/api/robots\",status=\"200\"} 2",
            "fms_http_requests_total{method=\"POST\",route=\"/api/tasks\",status=\"429\"} 1",
            "fms_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/robots\",le=\"0.005\"} 1",
            "fms_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/robots\",le=\"0.25\"} 2",
            "fms_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/robots\",le=\"+Inf\"} 2",
            "fms_http_request_duration_seconds_count{method=\"GET\",route=\"/api/robots\"} 2",
            "fms_http_rate_limited_total 1",
            "fms_auth_failures_total 0",
        ] {
            assert!(out.contains(line), "missing {line}\n{out}");
        }
    }
}

//! The OpenAPI 3 document, generated from the handlers' and types' annotations, served at
//! `/api/openapi.json`, and the interactive documentation page at `/api/docs`.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{fleet, keys, ops, robots, tasks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fms",
        description = "Fleet management for ROS 2 robots: robots, tasks, fleet e-stop, site map, keys. \
Errors are always `{\"error\":{\"code\":…,\"message\":…}}` (405 and other router errors \
too). With authentication on, send \
`X-API-Key: fms_…` or `Authorization: Bearer <JWT or key>`; viewers read, operators command \
robots and tasks, admins stop the fleet and manage keys. Rate-limited responses carry \
`X-RateLimit-Limit/Remaining/Reset`."
    ),
    paths(
        robots::list, robots::get_one, robots::cancel, robots::estop, robots::release,
        tasks::list, tasks::create, tasks::get_one, tasks::cancel, tasks::locations,
        fleet::status, fleet::estop, fleet::release,
        ops::map_meta, ops::map_image,
        keys::whoami, keys::list, keys::create, keys::revoke, keys::audit,
    ),
    modifiers(&Security),
    tags(
        (name = "robots"), (name = "tasks"), (name = "fleet"), (name = "map"), (name = "auth"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/openapi.json`.
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()),
    )
}

/// `GET /api/docs`: the built dashboard's API explorer page when present, else a plain page.
pub async fn docs() -> impl IntoResponse {
    Html(DOCS_PAGE)
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fms API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/api-docs/swagger-ui.css">
</head><body>
<div id="swagger-ui"><p style="font-family:sans-serif;margin:2em">Loading the API explorer…
If nothing appears, the dashboard is not built; the document itself is at
<a href="/api/openapi.json">/api/openapi.json</a>.</p></div>
<script src="/api-docs/swagger-ui-bundle.js"></script>
<script src="/api-docs/init.js"></script>
</body></html>"#;

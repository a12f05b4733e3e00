//! GraphiQL for browsers at `GET /graphql` when enabled, with its scripts and styles vendored in
//! the binary (`assets/graphiql/`, gzip-compressed) and served from `/graphql/assets/`: the page
//! works offline and never loads code from a third-party origin.

use std::io::Read;

use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::State;
use crate::adapters::http_error::ApiError;
use crate::domain::error::DomainError;

pub const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Polyport GraphiQL</title>
<style>body{margin:0;height:100vh}#graphiql{height:100vh}</style>
<link rel="stylesheet" href="/graphql/assets/graphiql.min.css">
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="/graphql/assets/react.production.min.js"></script>
<script src="/graphql/assets/react-dom.production.min.js"></script>
<script src="/graphql/assets/graphiql.min.js"></script>
<script>
const wsUrl = location.origin.replace(/^http/, "ws") + "/graphql/ws";
const fetcher = GraphiQL.createFetcher({ url: "/graphql", subscriptionUrl: wsUrl });
const defaultQuery = `# Polyport over GraphQL. Published posts need no credentials: run LatestPosts.
#
# To act as a user: run Register once, then Login, copy its accessToken, open the Headers tab
# (below) and write {"Authorization": "Bearer <accessToken>"}. Every request then carries it;
# subscriptions (run one with the play button) get it in connection_init.
query LatestPosts {
  posts(first: 5) {
    edges { node { id title status tags author { id name } } }
    pageInfo { hasNextPage endCursor }
  }
}

mutation Register {
  register(input: {email: "ada@example.com", name: "Ada", password: "correct horse battery"}) { id role }
}

mutation Login {
  login(input: {email: "ada@example.com", password: "correct horse battery"}) { accessToken expiresIn }
}

mutation CreatePost {
  createPost(input: {title: "Hello from GraphiQL", body: "Written in the browser.", tags: ["graphiql"]}) {
    id status version
  }
}

subscription PostEvents {
  postEvents { type post { id title status } }
}
`;
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, { fetcher, defaultQuery, defaultHeaders: "{}", defaultEditorToolsVisibility: "headers" }),
);
</script>
</body>
</html>
"#;

/// (name, content type, gzip bytes). Versions in `assets/graphiql/VERSIONS`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("graphiql.min.css", "text/css; charset=utf-8", include_bytes!("../../../assets/graphiql/graphiql.min.css.gz")),
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/graphiql/graphiql.min.js.gz"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/graphiql/react.production.min.js.gz"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/graphiql/react-dom.production.min.js.gz"),
    ),
];

/// `GET /graphql/assets/{name}`: gzip as stored when the client accepts it, else inflated.
/// Not found when GraphiQL is off.
pub async fn asset(AxumState(s): AxumState<State>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let found = ASSETS.iter().find(|(n, _, _)| *n == name);
    let Some((_, content_type, gz)) = found.filter(|_| s.shared.graphql.playground) else {
        return ApiError(DomainError::not_found("asset")).into_response();
    };
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| coding.split(';').next().is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip")));
    let mut response = if accepts_gzip {
        let mut r = gz.into_response();
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        let mut body = Vec::new();
        if let Err(e) = flate2::read::GzDecoder::new(*gz).read_to_end(&mut body) {
            return ApiError(DomainError::internal(e)).into_response();
        }
        body.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    *response.status_mut() = StatusCode::OK;
    response
}

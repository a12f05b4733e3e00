//! The OpenAPI 3.1 document, generated from the handlers and wire types.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as Doc, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::dto::*;
use super::error::{ErrorBody, ErrorObject, FieldIssueBody};
use super::{api_keys, auth, posts, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Polyport REST API", version = "1.0.0", description = "Users and posts over REST/JSON. Errors use one envelope: `{\"error\": {code, message, details, request_id}}`."),
    paths(
        auth::login, auth::refresh, auth::logout,
        users::register, users::list, users::me, users::get, users::update, users::delete, users::posts,
        posts::list, posts::create, posts::get, posts::update, posts::delete, posts::publish, posts::unpublish,
        api_keys::list, api_keys::create, api_keys::revoke,
    ),
    components(schemas(ErrorBody, ErrorObject, FieldIssueBody, RoleDto, StatusDto)),
    modifiers(&CommonResponses),
    tags((name = "auth"), (name = "users"), (name = "posts"), (name = "api-keys")),
)]
pub struct ApiDoc;

/// How every list's `limit` behaves, from the domain's own constants.
pub fn page_size_text() -> String {
    use crate::domain::page::{DEFAULT_LIMIT, MAX_LIMIT};
    format!("Page size, clamped into 1..={MAX_LIMIT} (default {DEFAULT_LIMIT}).")
}

/// Adds the security schemes and the error responses every operation can give, and the page
/// size rule on every `limit`; operations with a body can also answer 415.
struct CommonResponses;

const ERRORS: [(&str, &str); 12] = [
    ("400", "Malformed request (INVALID_REQUEST)"),
    ("401", "Missing or invalid credentials (UNAUTHENTICATED)"),
    ("403", "Not allowed (FORBIDDEN)"),
    ("404", "Not found, or not visible to you (NOT_FOUND)"),
    ("406", "Accept excludes application/json (INVALID_REQUEST)"),
    ("409", "Conflict, or the same Idempotency-Key in flight"),
    ("412", "If-Match did not match the current version"),
    ("413", "Body too large (PAYLOAD_TOO_LARGE)"),
    ("422", "Field rules broken (VALIDATION_FAILED) or Idempotency-Key reused"),
    ("429", "Rate limited (RATE_LIMITED); see Retry-After"),
    ("500", "Unexpected error (INTERNAL)"),
    ("503", "Store unavailable or draining (UNAVAILABLE)"),
];

const UNSUPPORTED_MEDIA_TYPE: (&str, &str) = ("415", "Body is not `Content-Type: application/json` (INVALID_REQUEST)");

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut Doc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
        let security = vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("api_key", Vec::<String>::new()),
        ];
        for item in doc.paths.paths.values_mut() {
            let ops: [&mut Option<Operation>; 5] =
                [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete, &mut item.put];
            for op in ops.into_iter().flatten() {
                op.security = Some(security.clone());
                for param in op.parameters.iter_mut().flatten().filter(|p| p.name == "limit") {
                    param.description = Some(page_size_text());
                }
                let with_body = op.request_body.is_some().then_some(UNSUPPORTED_MEDIA_TYPE);
                for (status, description) in ERRORS.into_iter().chain(with_body) {
                    op.responses.responses.entry(status.to_string()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/json",
                                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                            )
                            .build()
                            .into()
                    });
                }
            }
        }
    }
}

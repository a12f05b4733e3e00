//! Media types and protocol conformance: 415 and 406 on HTTP, gRPC size limits after
//! decompression, SOAP faults in the request's own version.

use std::io::Write;

use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::post_service_client::PostServiceClient;
use polyport::adapters::soap::envelope::Version;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic_types::StatusExt;

use super::{assert_healthy, rss_kib};
use crate::graphql::MODERN;
use crate::grpc::{assert_rich, authed, channel};
use crate::helpers::{assert_error, spawn_app};
use crate::soap::{Answer, envelope, op};

#[tokio::test]
async fn rest_and_graphql_answer_415_to_a_body_that_is_not_json_and_406_to_an_accept_they_cannot_meet() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let r = app
        .req(Method::POST, "/posts", Some(&user.token))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    let body = assert_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["details"], json!([{"field": "content-type", "issue": "unsupported"}]));
    let r = app.client.post(app.url("/graphql")).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = app.req(Method::GET, "/posts", None).header("accept", "text/html").send().await.unwrap();
    let body = assert_error(r, StatusCode::NOT_ACCEPTABLE, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["details"], json!([{"field": "accept", "issue": "not_acceptable"}]));
    let r =
        app.req(Method::GET, "/posts", None).header("accept", "application/json;q=0, text/csv").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE, "q=0 refuses the type");
    for accept in ["application/json", "*/*", "application/*", "text/html, application/json;q=0.5"] {
        let r = app.req(Method::GET, "/posts", None).header("accept", accept).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{accept}");
    }
    let r = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/xml")
        .json(&json!({"query": "{ posts { edges { cursor } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
    let r = app
        .client
        .post(app.url("/graphql"))
        .header("accept", MODERN)
        .json(&json!({"query": "{ posts { edges { cursor } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_grpc_message_over_the_limit_is_resource_exhausted_with_payload_too_large() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let mut posts = PostServiceClient::new(channel(&app).await);
    let req = pb::CreatePostRequest { title: "big".into(), body: "x".repeat(1024 * 1024 + 10), tags: vec![] };
    let status = posts.create_post(authed(req, &user.token)).await.unwrap_err();
    let details = assert_rich(&status, Code::ResourceExhausted, "PAYLOAD_TOO_LARGE");
    assert_eq!(details.bad_request().unwrap().field_violations[0].field, "message");
    assert_healthy(&app).await;
}

#[tokio::test]
async fn gzip_compressed_grpc_requests_are_accepted_and_the_limit_applies_after_decompression() {
    let app = spawn_app().await;
    let user = app.member("ada").await;
    let mut posts = PostServiceClient::new(channel(&app).await).send_compressed(CompressionEncoding::Gzip);
    let req = pb::CreatePostRequest { title: "compressed".into(), body: "squeeze ".repeat(1000), tags: vec![] };
    let post = posts.create_post(authed(req, &user.token)).await.expect("a gzip request is served").into_inner();
    assert_eq!(post.body.len(), 8000);

    // 200 MB of zeros, about 200 KB compressed: refused once 1 MiB has been inflated.
    let before = rss_kib();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..200 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1024 * 1024, "the bomb fits under the limit compressed: {}", bomb.len());
    let mut frame = vec![1u8];
    frame.extend_from_slice(&(bomb.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bomb);
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let r = h2
        .post(app.url("/polyport.v1.PostService/CreatePost"))
        .header("content-type", "application/grpc")
        .header("grpc-encoding", "gzip")
        .header("te", "trailers")
        .bearer_auth(&user.token)
        .body(frame)
        .send()
        .await
        .unwrap();
    let headers = r.headers().clone();
    let Some(status) = tonic::Status::from_header_map(&headers) else {
        panic!("a trailers-only refusal: {headers:?} {:?}", r.bytes().await);
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
    assert_eq!(info.reason, "PAYLOAD_TOO_LARGE");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "the bomb was never inflated whole: memory grew by {grown} KiB");
    assert_healthy(&app).await;
}

async fn soap(app: &crate::helpers::TestApp, content_type: &str, action: Option<&str>, body: String) -> Answer {
    let mut rb = app.client.post(app.url("/soap")).header("content-type", content_type);
    if let Some(a) = action {
        rb = rb.header("soapaction", a);
    }
    let r = rb.body(body).send().await.unwrap();
    Answer { status: r.status(), headers: r.headers().clone(), body: r.text().await.unwrap() }
}

#[tokio::test]
async fn soap_answers_oversize_mismatched_and_actionless_requests_with_faults_of_their_version() {
    let app = spawn_app().await;
    let get = op("GetPost", &[("id", "nope")]);
    let big = "x".repeat(2 * 1024 * 1024);
    let a = soap(&app, "application/soap+xml; charset=utf-8", None, big.clone()).await;
    a.assert_fault(Version::Soap12, "Sender", "PAYLOAD_TOO_LARGE");
    let a = soap(&app, "text/xml; charset=utf-8", Some("\"urn:polyport:v1#GetPost\""), big).await;
    a.assert_fault(Version::Soap11, "Client", "PAYLOAD_TOO_LARGE");

    let a = soap(&app, "text/xml; charset=utf-8", Some("\"\""), envelope(Version::Soap12, "", &get)).await;
    assert_eq!(a.headers["content-type"], Version::Soap11.content_type());
    assert!(a.body.contains("<faultcode>soap:VersionMismatch</faultcode>"), "{}", a.body);
    let a = soap(&app, "application/soap+xml", None, envelope(Version::Soap11, "", &get)).await;
    assert_eq!(a.headers["content-type"], Version::Soap12.content_type());
    assert!(a.body.contains("<soap:Value>soap:VersionMismatch</soap:Value>"), "{}", a.body);

    // WS-I Basic Profile R2744: SOAP 1.1 requests carry SOAPAction; SOAP 1.2 may leave it out.
    let a = soap(&app, "text/xml; charset=utf-8", None, envelope(Version::Soap11, "", &get)).await;
    a.assert_fault(Version::Soap11, "Client", "INVALID_REQUEST");
    assert_eq!(a.issues(), vec![("soapAction".to_string(), "required".to_string())]);
    let a = soap(&app, "text/xml; charset=utf-8", Some("\"\""), envelope(Version::Soap11, "", &get)).await;
    a.assert_fault(Version::Soap11, "Client", "NOT_FOUND");
    let a = soap(&app, "application/soap+xml", None, envelope(Version::Soap12, "", &get)).await;
    a.assert_fault(Version::Soap12, "Sender", "NOT_FOUND");
}

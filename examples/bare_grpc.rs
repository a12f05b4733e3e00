//! Bare tonic baseline and load client for the gRPC benchmark (`bench/grpc.sh`).
//!
//! - `bare_grpc serve [ADDR]`: serves `polyport.v1.PostService/GetPost` answering a fixed post
//!   (no auth, no store, no middleware) with the same generated tonic service and the same
//!   hyper-util HTTP/2 server stack as Polyport. First stdout line: `listening on http://ADDR`.
//! - `bare_grpc unary URL POST_ID CONCURRENCY SECONDS [TOKEN]`: GetPost in a closed loop from
//!   CONCURRENCY tasks over 4 HTTP/2 connections; prints one JSON line with rps, p50 and p99 (ms).
//! - `bare_grpc stream URL CONCURRENCY SECONDS [TOKEN]`: ListPosts streams in a loop; prints
//!   messages per second.

use std::time::{Duration, Instant};

use pb::post_service_server::{PostService, PostServiceServer};
use polyport::adapters::grpc::pb;
use polyport::adapters::grpc::pb::post_service_client::PostServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone)]
struct Bare(pb::Post);

type Stream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ListPostsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PostService for Bare {
    type ListPostsStream = Stream;

    async fn get_post(&self, _: Request<pb::GetPostRequest>) -> Result<Response<pb::Post>, Status> {
        Ok(Response::new(self.0.clone()))
    }
    async fn create_post(&self, _: Request<pb::CreatePostRequest>) -> Result<Response<pb::Post>, Status> {
        Err(Status::unimplemented("bare"))
    }
    async fn list_posts(&self, _: Request<pb::ListPostsRequest>) -> Result<Response<Stream>, Status> {
        Err(Status::unimplemented("bare"))
    }
    async fn update_post(&self, _: Request<pb::UpdatePostRequest>) -> Result<Response<pb::Post>, Status> {
        Err(Status::unimplemented("bare"))
    }
    async fn publish_post(&self, _: Request<pb::PublishPostRequest>) -> Result<Response<pb::Post>, Status> {
        Err(Status::unimplemented("bare"))
    }
    async fn unpublish_post(&self, _: Request<pb::UnpublishPostRequest>) -> Result<Response<pb::Post>, Status> {
        Err(Status::unimplemented("bare"))
    }
    async fn delete_post(&self, _: Request<pb::DeletePostRequest>) -> Result<Response<pb::DeletePostResponse>, Status> {
        Err(Status::unimplemented("bare"))
    }
    async fn import_posts(
        &self,
        _: Request<Streaming<pb::ImportPostsRequest>>,
    ) -> Result<Response<pb::ImportPostsResponse>, Status> {
        Err(Status::unimplemented("bare"))
    }
}

async fn serve(addr: &str) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    let now = prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 };
    let post = pb::Post {
        id: "01900000-0000-7000-8000-000000000000".into(),
        author_id: "01900000-0000-7000-8000-000000000001".into(),
        title: "A post of ordinary size".into(),
        body: "x".repeat(200),
        status: "published".into(),
        tags: vec!["bench".into(), "grpc".into()],
        published_at: Some(now),
        created_at: Some(now),
        updated_at: Some(now),
        version: 2,
    };
    let router = tonic::service::Routes::new(PostServiceServer::new(Bare(post))).prepare().into_axum_router();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(256);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone())).into_owned();
        tokio::spawn(conn);
    }
}

fn authed<T>(message: T, token: &Option<String>) -> Request<T> {
    let mut req = Request::new(message);
    if let Some(t) = token {
        req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().expect("token is ASCII"));
    }
    req
}

async fn channels(url: &str) -> anyhow::Result<Vec<Channel>> {
    let mut out = vec![];
    for _ in 0..4 {
        out.push(Endpoint::from_shared(url.to_string())?.tcp_nodelay(true).connect().await?);
    }
    Ok(out)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

async fn unary(url: &str, id: String, concurrency: usize, secs: u64, token: Option<String>) -> anyhow::Result<()> {
    let chans = channels(url).await?;
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = vec![];
    for i in 0..concurrency {
        let mut client = PostServiceClient::new(chans[i % chans.len()].clone());
        let (id, token) = (id.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < until {
                let started = Instant::now();
                match client.get_post(authed(pb::GetPostRequest { id: id.clone() }, &token)).await {
                    Ok(_) => lat.push(started.elapsed().as_micros() as u64),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (lat, e) = t.await?;
        all.extend(lat);
        errors += e;
    }
    all.sort_unstable();
    let rps = all.len() as f64 / secs as f64;
    println!(
        "{{\"rps\": {rps:.0}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"ok\": {}, \"errors\": {errors}}}",
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.len()
    );
    Ok(())
}

async fn stream(url: &str, concurrency: usize, secs: u64, token: Option<String>) -> anyhow::Result<()> {
    let chans = channels(url).await?;
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = vec![];
    for i in 0..concurrency {
        let mut client = PostServiceClient::new(chans[i % chans.len()].clone());
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let (mut messages, mut errors) = (0u64, 0u64);
            while Instant::now() < until {
                match client.list_posts(authed(pb::ListPostsRequest::default(), &token)).await {
                    Ok(r) => {
                        let mut s = r.into_inner();
                        loop {
                            match s.message().await {
                                Ok(Some(_)) => messages += 1,
                                Ok(None) => break,
                                Err(_) => {
                                    errors += 1;
                                    break;
                                }
                            }
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (messages, errors)
        }));
    }
    let (mut messages, mut errors) = (0, 0);
    for t in tasks {
        let (m, e) = t.await?;
        messages += m;
        errors += e;
    }
    println!(
        "{{\"messages_per_sec\": {:.0}, \"messages\": {messages}, \"errors\": {errors}}}",
        messages as f64 / secs as f64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let num = |i: usize, d: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    match arg(0).as_str() {
        "serve" => serve(args.get(1).map_or("127.0.0.1:0", String::as_str)).await,
        "unary" => unary(&arg(1), arg(2), num(3, 64) as usize, num(4, 10), args.get(5).cloned()).await,
        "stream" => stream(&arg(1), num(2, 4) as usize, num(3, 10), args.get(4).cloned()).await,
        _ => anyhow::bail!(
            "usage: bare_grpc serve [ADDR] | unary URL ID CONC SECS [TOKEN] | stream URL CONC SECS [TOKEN]"
        ),
    }
}

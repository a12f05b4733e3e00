//! The README stays true: its tour and its curl try-it blocks run against a live server, the
//! other try-it blocks are where `.ci/examples.sh` finds them, and its settings table matches
//! `src/config.rs` (every flag, variable and default).

use std::process::{Command, Stdio};
use std::time::Duration;

use clap::CommandFactory;

use crate::helpers::spawn_app;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md is readable")
}

/// The body of the first fenced block opened with exactly `fence` at or after line `from`,
/// and the line after its closing fence.
fn fenced_block(lines: &[&str], from: usize, fence: &str) -> Option<(String, usize)> {
    let start = from + lines[from..].iter().position(|l| l.trim_end() == fence)? + 1;
    let len = lines[start..].iter().position(|l| l.trim_end() == "```")?;
    Some((lines[start..start + len].join("\n") + "\n", start + len + 1))
}

/// The tour script (the first ```sh block after `## Tour`) and its sample output (the ```text
/// block after the script).
fn tour(readme: &str) -> (String, String) {
    let lines: Vec<&str> = readme.lines().collect();
    let heading = lines.iter().position(|l| l.trim_end() == "## Tour").expect("README has a `## Tour` heading");
    let (script, after) = fenced_block(&lines, heading, "```sh").expect("a ```sh block follows `## Tour`");
    let (sample, _) = fenced_block(&lines, after, "```text").expect("a ```text sample output follows the tour");
    (script, sample)
}

/// The try-it blocks, in README order: (name, script). Each is the ```sh block right after a
/// `<!-- try-it: NAME -->` line (`.ci/examples.sh` extracts them the same way).
fn try_it_blocks(readme: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.trim().strip_prefix("<!-- try-it: ").and_then(|r| r.strip_suffix(" -->")) else {
            continue;
        };
        assert_eq!(lines.get(i + 1).map(|l| l.trim_end()), Some("```sh"), "a ```sh block follows try-it {name}");
        let (script, _) = fenced_block(&lines, i + 1, "```sh").expect("the block is closed");
        blocks.push((name.to_string(), script));
    }
    blocks
}

/// Runs `script` with bash against `base`, within `limit`; its stdout, or a panic with both streams.
async fn run_bash(script: String, base: &str, limit: Duration) -> String {
    let child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("BASE", base)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash starts");
    let pid = child.id();
    let waited = tokio::time::timeout(limit, tokio::task::spawn_blocking(move || child.wait_with_output())).await;
    let output = match waited {
        Ok(joined) => joined.expect("the waiting thread finishes").expect("the output is collected"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("the script did not finish within {limit:?}");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the script failed ({}).\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    stdout
}

/// Text before the first `:` of a line: the label the tour prints for each step.
fn label(line: &str) -> &str {
    line.split_once(':').map_or(line, |(l, _)| l).trim()
}

#[tokio::test]
async fn the_readme_tour_runs_against_a_live_server() {
    let (script, sample) = tour(&readme());
    let app = spawn_app().await;

    let child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("BASE", &app.base)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash starts");
    let pid = child.id();
    let waited =
        tokio::time::timeout(Duration::from_secs(120), tokio::task::spawn_blocking(move || child.wait_with_output()))
            .await;
    let output = match waited {
        Ok(joined) => joined.expect("the waiting thread finishes").expect("the tour's output is collected"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("the README tour did not finish within 120 s");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the README tour failed ({}).\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    let printed: Vec<&str> = stdout.lines().collect();
    let line = |prefix: &str| -> &str {
        printed
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("the tour printed no `{prefix}` line.\nstdout:\n{stdout}"))
    };
    assert!(line("registered:").ends_with("role=member"));
    assert_eq!(line("logged in:"), "logged in: token_type=Bearer expires_in=900");
    assert!(line("created:").ends_with("status=draft version=1"));
    assert_eq!(line("published:"), "published: status=published version=2");
    assert!(line("etag:").starts_with("etag: \"v2\" ratelimit-remaining: "));
    assert_eq!(line("if-none-match:"), "if-none-match: 304 Not Modified");

    let first = line("attempt 1:");
    let replayed = line("attempt 2:");
    assert!(first.ends_with("idempotent-replayed: (absent)"), "the first attempt is not a replay: {first}");
    assert!(replayed.ends_with("idempotent-replayed: true"), "the retry is a replay: {replayed}");
    let location = |l: &str| l.split_whitespace().find(|w| w.starts_with("location=/api/v1/posts/")).map(str::to_owned);
    assert!(location(first).is_some(), "{first}");
    assert_eq!(location(first), location(replayed), "the replay answers the first post's location");

    assert_eq!(line("page 1:"), "page 1: 1 post, has_more=true");
    assert_eq!(line("page 2:"), "page 2: 1 post, has_more=false next_cursor=null");
    let error = line("error:");
    assert!(error.starts_with("error: 422 {\"error\":{\"code\":\"VALIDATION_FAILED\""), "{error}");
    assert!(error.contains("{\"field\":\"title\",\"issue\":\"required\"}"), "{error}");
    assert!(error.contains("\"request_id\":\""), "{error}");
    assert_eq!(line("api key:").split_once(" scopes=").map(|(_, s)| s), Some("[\"posts:read\"]"));
    assert!(line("api key:").starts_with("api key: prefix=ppk_"));
    assert_eq!(line("x-api-key read:"), "x-api-key read: 1 draft visible to its owner");
    assert_eq!(line("x-api-key write"), "x-api-key write without posts:write: 403");
    assert_eq!(printed.last().copied(), Some("tour complete"));

    // The sample output in the README shows the same steps, in the same order.
    let sample_labels: Vec<&str> = sample.lines().map(label).collect();
    let printed_labels: Vec<&str> = printed.iter().copied().map(label).collect();
    assert_eq!(sample_labels, printed_labels, "the README's sample output drifted from what the tour prints");
}

#[tokio::test]
async fn the_readme_try_it_blocks_for_curl_run_against_a_live_server_and_every_protocol_has_one() {
    let blocks = try_it_blocks(&readme());
    let names: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    // `.ci/examples.sh` runs all of them in this order; these three need only bash, curl and python3.
    assert_eq!(names, ["sign-in", "graphql", "sse", "ws", "grpcurl", "soap", "grpc-web"]);
    let script: String = blocks
        .iter()
        .filter(|(n, _)| ["sign-in", "graphql", "sse"].contains(&n.as_str()))
        .map(|(_, s)| s.as_str())
        .collect();
    let app = spawn_app().await;
    let out = run_bash(script, &app.base, Duration::from_secs(60)).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("signed in as "), "{out}");
    let created: serde_json::Value = serde_json::from_str(lines[1]).expect("the mutation answers JSON");
    let post = &created["data"]["createPost"];
    assert_eq!((post["title"].as_str(), post["status"].as_str()), (Some("Hello, GraphQL"), Some("DRAFT")), "{out}");
    assert_eq!(post["author"]["name"], "Try");
    let listed: serde_json::Value = serde_json::from_str(lines[2]).expect("the query answers JSON");
    assert!(listed["data"]["posts"]["edges"].is_array() && listed.get("errors").is_none(), "{out}");
    // The SSE stream replayed the post's creation with its event id, then ran until curl stopped it.
    let stream = lines[3..].join("\n");
    assert!(stream.contains("retry:"), "{stream}");
    assert!(stream.contains("event: post.created"), "{stream}");
    assert!(stream.contains(&format!("\"id\":\"{}\"", post["id"].as_str().unwrap())), "{stream}");
    assert!(stream.lines().any(|l| l.strip_prefix("id: ").is_some_and(|id| id.parse::<u64>().is_ok())), "{stream}");
}

#[test]
fn the_readme_opens_with_run_and_test_and_documents_every_setting() {
    let readme = readme();
    let lines: Vec<&str> = readme.lines().collect();
    let (first_block, _) = fenced_block(&lines, 0, "```sh").expect("the README opens with a ```sh block");
    assert!(readme.find("```sh") < readme.find("## "), "the commands come before the first section");
    assert!(first_block.contains("cargo run --release"), "{first_block}");
    assert!(first_block.contains("cargo nextest run"), "{first_block}");
    assert!(readme.contains("TEST_DATABASE_URL=postgres://"));
    assert!(readme.contains("bash .ci/run"));

    let cli = polyport::config::Cli::command();
    let mut commands = vec![&cli];
    let mut missing = Vec::new();
    while let Some(command) = commands.pop() {
        commands.extend(command.get_subcommands());
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version")) {
                let flag = format!("`--{long}`");
                let in_prose = format!("--{long} ");
                if !readme.contains(&flag) && !readme.contains(&in_prose) {
                    missing.push(format!("--{long}"));
                }
            }
            if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
                if !readme.contains(env) {
                    missing.push(env.to_owned());
                }
            }
        }
    }
    assert!(missing.is_empty(), "README.md does not document: {missing:?}");

    // The settings table: one row per setting, with its variable and clap's default.
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let mut wrong = Vec::new();
    for arg in cli.get_arguments().filter(|a| a.get_env().is_some()) {
        let flag = format!("`--{}`", arg.get_long().unwrap());
        let env = format!("`{}`", arg.get_env().unwrap().to_str().unwrap());
        let Some(row) = rows.iter().find(|r| r[0] == flag) else {
            wrong.push(format!("{flag}: no row in the settings table"));
            continue;
        };
        if row[1] != env {
            wrong.push(format!("{flag}: environment {} in the README, {env} in config.rs", row[1]));
        }
        if let Some(default) = arg.get_default_values().first() {
            let want = format!("`{}`", default.to_str().unwrap());
            if row[2] != want {
                wrong.push(format!("{flag}: default {} in the README, {want} in config.rs", row[2]));
            }
        }
    }
    let settings: Vec<String> = cli.get_arguments().filter_map(|a| a.get_long()).map(|l| format!("`--{l}`")).collect();
    for row in &rows {
        if !settings.contains(&row[0].to_string()) {
            wrong.push(format!("{}: in the README's table, not a setting", row[0]));
        }
    }
    assert!(wrong.is_empty(), "the settings table drifted from src/config.rs: {wrong:#?}");
}

//! The README stays true: its tour runs against a live server, and it documents every setting.

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
}

//! The story in a real headless browser: the server and the demo apps on ephemeral ports,
//! then `node tests/browser/story.mjs` (Debian's chromium through playwright-core, axe-core on
//! every page, screenshots under `target/screenshots/`). The test fails when the script does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use poortwachter::clock::Clock;

use crate::demo_apps::start_demo_apps;
use crate::helpers::TestApp;

/// `node`, the browser and the npm packages, or why not. Without them the test is not run on
/// a developer's machine (said loudly), and fails under `CI=true`, where `.ci/run` installs them.
fn browser_tools(root: &Path) -> Result<(PathBuf, PathBuf), String> {
    let node = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("node"))
                .find(|candidate| candidate.is_file())
        })
        .ok_or("node is not on PATH")?;
    let chromium = PathBuf::from(
        std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string()),
    );
    if !chromium.is_file() {
        return Err(format!(
            "{} is missing (apt-get install chromium)",
            chromium.display()
        ));
    }
    for package in ["playwright-core", "axe-core"] {
        if !root
            .join("tests/browser/node_modules")
            .join(package)
            .is_dir()
        {
            return Err(format!(
                "tests/browser/node_modules/{package} is missing (npm ci in tests/browser)"
            ));
        }
    }
    Ok((node, chromium))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_story_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (node, chromium) = match browser_tools(root) {
        Ok(tools) => tools,
        Err(missing) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but the browser test cannot run: {missing}");
            }
            eprintln!(
                "\n*** BROWSER TEST NOT RUN: {missing}. .ci/run installs what it needs. ***\n"
            );
            return;
        }
    };
    // The story reads "Wie keek mee" as the flush job writes it (test apps otherwise flush
    // by hand): every second, so the page has the reads soon after the partner's call.
    let app = TestApp::spawn_sqlite_with(|c| c.access_log_flush_secs = 1).await;
    let apps = start_demo_apps(&app).await;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let screenshots = target.join("screenshots");
    let _ = std::fs::remove_dir_all(&screenshots);
    let run = tokio::process::Command::new(node)
        .arg("tests/browser/story.mjs")
        .current_dir(root)
        .env("ISSUER", &app.issuer)
        .env("PARTNER_URL", &apps.partner)
        .env("API_URL", &apps.api)
        .env("SERVER_TIME", app.clock.now().timestamp().to_string())
        .env("SCREENSHOT_DIR", &screenshots)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser story took longer than 5 minutes")
        .expect("node could not be started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser story failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("pages checked with axe-core"), "{stdout}");
}

//! The school console's roster upload (dry run, errors with file/line/column, confirmation)
//! and activation codes as printable letters and as CSV.

use std::io::Write;

use crate::helpers::*;

const NEW_STUDENT: &str =
    "demo-100009,,2025-08-01T08:00:00.000Z,true,org-12ab,student,100009,,Daan,Mulder,,100009,,,,\n";

fn demo_zip(extra_user: &str, extra_demographic: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/demo/12AB");
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for name in ["manifest.csv", "orgs.csv", "users.csv", "demographics.csv"] {
        let mut bytes = std::fs::read(dir.join(name)).unwrap();
        if name == "users.csv" {
            bytes.extend_from_slice(extra_user.as_bytes());
        }
        if name == "demographics.csv" {
            bytes.extend_from_slice(extra_demographic.as_bytes());
        }
        writer.start_file(name, options).unwrap();
        writer.write_all(&bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn upload(csrf: &str, zip: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("csrf", csrf.to_string())
        .part(
            "roster",
            reqwest::multipart::Part::bytes(zip)
                .file_name("export.zip")
                .mime_str("application/zip")
                .unwrap(),
        )
}

#[tokio::test]
async fn an_upload_is_dry_run_first_and_applied_on_confirmation() {
    let app = TestApp::spawn_sqlite().await;
    let (browser, home) = app.supervisor_browser().await;
    let csrf = home.input("csrf").unwrap();
    let zip = demo_zip(NEW_STUDENT, "demo-100009,,,2011-05-05\n");
    let dry = browser
        .post_multipart("/school/import", upload(&csrf, zip.clone()))
        .await
        .page();
    assert!(dry.html.contains("Proefimport"), "{}", dry.html);
    assert!(
        dry.html.contains(r#"<td id="students-added">1</td>"#),
        "{}",
        dry.html
    );
    // Nothing written yet.
    assert!(app
        .state
        .store
        .find_account_by_login("12AB", "100009")
        .await
        .unwrap()
        .is_none());
    let upload_id = dry.input("upload").unwrap();
    let done = browser
        .post(
            "/school/import/confirm",
            &[("csrf", &csrf), ("upload", &upload_id)],
        )
        .await
        .page();
    assert!(done.html.contains("verwerkt"), "{}", done.html);
    assert!(app
        .state
        .store
        .find_account_by_login("12AB", "100009")
        .await
        .unwrap()
        .is_some());
    // An upload is confirmed once.
    let again = browser
        .post(
            "/school/import/confirm",
            &[("csrf", &csrf), ("upload", &upload_id)],
        )
        .await
        .page();
    assert_eq!(again.status, 400);

    // Without the CSRF token the upload is refused.
    let forged = browser
        .post_multipart("/school/import", upload("wrong", zip))
        .await
        .page();
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn a_broken_file_shows_where_and_changes_nothing() {
    let app = TestApp::spawn_sqlite().await;
    let (browser, home) = app.supervisor_browser().await;
    let csrf = home.input("csrf").unwrap();
    let zip = demo_zip(NEW_STUDENT, "demo-100009,,,2011-13-45\n");
    let page = browser
        .post_multipart("/school/import", upload(&csrf, zip))
        .await
        .page();
    assert!(page.html.contains("fout(en)"), "{}", page.html);
    let table = scraper::Html::parse_document(&page.html);
    let row: Vec<String> = table
        .select(&scraper::Selector::parse("#import-errors tbody tr td").unwrap())
        .map(|td| td.text().collect())
        .collect();
    assert_eq!(row[0], "demographics.csv", "{row:?}");
    assert!(!row[1].is_empty(), "a line number: {row:?}");
    assert_eq!(row[2], "birthDate", "{row:?}");
    assert!(page.input("upload").is_none(), "nothing to confirm");
    assert!(app
        .state
        .store
        .find_account_by_login("12AB", "100009")
        .await
        .unwrap()
        .is_none());

    // Not a zip at all: a readable page, not a 500.
    let junk = browser
        .post_multipart("/school/import", upload(&csrf, b"no zip".to_vec()))
        .await
        .page();
    assert!(junk.status == 400 || junk.status == 200, "{}", junk.status);
    assert!(
        junk.html.contains("zip") || junk.html.contains("fout"),
        "{}",
        junk.html
    );
}

#[tokio::test]
async fn activation_codes_come_as_letters_or_csv() {
    let app = TestApp::spawn_sqlite().await;
    let (browser, home) = app.supervisor_browser().await;
    let csrf = home.input("csrf").unwrap();
    // The confirmation is required.
    let unconfirmed = browser
        .post(
            "/school/codes",
            &[
                ("csrf", &csrf),
                ("usernames", "100001"),
                ("format", "letters"),
            ],
        )
        .await
        .page();
    assert_eq!(unconfirmed.status, 400);
    let letters = browser
        .post(
            "/school/codes",
            &[
                ("csrf", &csrf),
                ("usernames", "100001\r\np.devries"),
                ("format", "letters"),
                ("confirm", "yes"),
            ],
        )
        .await
        .page();
    assert_eq!(
        letters.html.matches("<article class=\"letter\">").count(),
        2,
        "{}",
        letters.html
    );
    assert!(letters.html.contains("Lyceum De Vecht"));
    assert!(letters.html.contains("Jan de Vries"));
    assert!(letters.html.contains(&format!("{}/activate", app.issuer)));
    // The code on the letter activates the account.
    let code: String = scraper::Html::parse_document(&letters.html)
        .select(&scraper::Selector::parse("article.letter code.secret").unwrap())
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(code.len(), 19, "{code}");

    let csv = browser
        .raw_get("/school/audit.csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains("activation.issue"));
    assert!(!csv.contains(&code), "codes never reach the audit log");

    let csv = browser
        .post(
            "/school/codes",
            &[
                ("csrf", &csrf),
                ("usernames", "100002"),
                ("format", "csv"),
                ("confirm", "yes"),
            ],
        )
        .await
        .page();
    assert!(
        csv.html
            .starts_with("username,given_name,family_name,activation_code"),
        "{}",
        csv.html
    );
    assert!(csv.html.contains("100002,Sara,Bakker,"));

    // Unknown people: nothing issued, the page says who.
    let unknown = browser
        .post(
            "/school/codes",
            &[
                ("csrf", &csrf),
                ("usernames", "100001 999999"),
                ("format", "csv"),
                ("confirm", "yes"),
            ],
        )
        .await
        .page();
    assert_eq!(unknown.status, 400);
    assert!(unknown.html.contains("999999"));
}

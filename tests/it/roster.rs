//! The OneRoster import: the sample school from `examples/roster/`, bulk and delta, re-imports
//! that change nothing, identity by sourcedId, leaving and coming back, and broken or hostile
//! files that change nothing at all.

use std::io::Write;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;
use crate::on_every_backend;

type Files = Vec<(String, Vec<u8>)>;

fn sample(dir: &str) -> Files {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/roster")
        .join(dir);
    let mut files: Files = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn replace(files: &mut Files, name: &str, content: impl Into<Vec<u8>>) {
    let content = content.into();
    match files.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = content,
        None => files.push((name.to_string(), content)),
    }
}

fn text(files: &Files, name: &str) -> String {
    String::from_utf8(files.iter().find(|(n, _)| n == name).unwrap().1.clone()).unwrap()
}

fn zip_of(files: &Files) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

async fn post_zip(
    app: &TestApp,
    token: &str,
    brin: &str,
    body: Vec<u8>,
    dry_run: bool,
) -> (StatusCode, Value) {
    let response = app
        .backchannel()
        .post(app.url(&format!(
            "/api/admin/schools/{brin}/roster?dry_run={dry_run}"
        )))
        .bearer_auth(token)
        .header("Content-Type", "application/zip")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn import(app: &TestApp, brin: &str, files: &Files, dry_run: bool) -> (StatusCode, Value) {
    let token = app.management_token("platform-demo").await;
    post_zip(app, &token, brin, zip_of(files), dry_run).await
}

type AccountRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    i64,
);

/// Where an error must be reported: file, line, column.
type Place<'a> = (&'a str, Option<u64>, Option<&'a str>);

/// Everything the import may touch, as text: accounts, enrollments, guardianships, grants.
async fn snapshot(app: &TestApp) -> String {
    let pool = app.state.store.pool();
    let accounts: Vec<AccountRow> = sqlx::query_as(
        "SELECT id, school_brin, username, given_name, tussenvoegsel, family_name, birth_date, \
             source_id, login_enabled FROM accounts ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let enrollments: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT student_id, school_brin, starts_at, ends_at FROM enrollments ORDER BY student_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let guardianships: Vec<(String, String)> = sqlx::query_as(
        "SELECT parent_id, student_id FROM guardianships ORDER BY parent_id, student_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let grants: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT id, revoked_at FROM grants ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    format!("{accounts:?}\n{enrollments:?}\n{guardianships:?}\n{grants:?}")
}

/// The last entry of the policy change log and the number of audit rows: both stay put when
/// nothing changes.
async fn change_log_and_audit(app: &TestApp) -> (i64, i64) {
    let logged = app.state.store.latest_policy_change().await.unwrap();
    let (audit,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    (logged, audit)
}

async fn account(
    app: &TestApp,
    brin: &str,
    username: &str,
) -> poortwachter::storage::accounts::Account {
    app.state
        .store
        .find_account_by_login(brin, username)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no account {username} at {brin}"))
}

async fn enrolled_at(app: &TestApp, brin: &str, username: &str) -> Option<String> {
    let student = account(app, brin, username).await;
    app.state
        .store
        .active_enrollment(&student.id, app.state.now())
        .await
        .unwrap()
}

async fn login_enabled(app: &TestApp, brin: &str, username: &str) -> i64 {
    let (enabled,): (i64,) = sqlx::query_as(
        "SELECT login_enabled FROM accounts WHERE school_brin = $1 AND username = $2",
    )
    .bind(brin)
    .bind(username)
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    enabled
}

async fn children(app: &TestApp, brin: &str, parent: &str) -> Vec<String> {
    let parent = account(app, brin, parent).await;
    let mut list: Vec<String> = app
        .state
        .store
        .children_of(&parent.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.username)
        .collect();
    list.sort();
    list
}

fn counts(report: &Value, group: &str) -> Value {
    report[group].clone()
}

async fn the_sample_school_imports_in_bulk_then_delta(app: TestApp) {
    app.state
        .store
        .insert_school("56EF", "Het Baken")
        .await
        .unwrap();
    let bulk = sample("56EF");

    // A dry run answers the full summary and writes nothing.
    let before = snapshot(&app).await;
    let facts = change_log_and_audit(&app).await;
    let (status, report) = import(&app, "56EF", &bulk, true).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["applied"], false);
    assert_eq!(report["students"]["added"], 6, "{report}");
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(change_log_and_audit(&app).await, facts);

    let (status, report) = import(&app, "56EF", &bulk, false).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["mode"], "bulk");
    assert_eq!(report["applied"], true);
    assert_eq!(
        counts(&report, "students"),
        serde_json::json!({"added": 6, "updated": 0, "unchanged": 0, "leaving": 0, "reenrolled": 0})
    );
    assert_eq!(
        counts(&report, "parents"),
        serde_json::json!({"added": 4, "updated": 0, "unchanged": 0})
    );
    assert_eq!(
        counts(&report, "guardianships"),
        serde_json::json!({"added": 5, "removed": 0})
    );
    assert_eq!(report["skipped"]["rows"], 1);
    assert_eq!(report["skipped"]["by_role"]["teacher"], 1);
    assert_eq!(report["errors"], serde_json::json!([]));

    // Names with their tussenvoegsel, birth dates, no password yet; teachers are not kept.
    let daan = account(&app, "56EF", "560001").await;
    assert_eq!(daan.tussenvoegsel.as_deref(), Some("van den"));
    assert_eq!(daan.family_name, "Berg");
    assert_eq!(daan.birth_date.as_deref(), Some("2013-04-12"));
    assert_eq!(daan.password_hash, "");
    assert_eq!(daan.role, "student");
    assert_eq!(
        enrolled_at(&app, "56EF", "560001").await.as_deref(),
        Some("56EF")
    );
    assert_eq!(account(&app, "56EF", "a.vandijk").await.role, "parent");
    assert!(app
        .state
        .store
        .find_account_by_login("56EF", "k.smit")
        .await
        .unwrap()
        .is_none());
    // A parent with two children, linked from the parent's side; one linked from the child's.
    assert_eq!(
        children(&app, "56EF", "m.vandenberg").await,
        ["560001", "560002"]
    );
    assert_eq!(children(&app, "56EF", "a.vandijk").await, ["560004"]);

    // The school's audit log names the import once.
    let platform = app.management_token("platform-demo").await;
    let (_, audit) = app
        .admin("GET", "/api/admin/schools/56EF/audit", &platform, None)
        .await;
    let imports: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "roster.import")
        .collect();
    assert_eq!(imports.len(), 1, "{audit}");
    assert_eq!(imports[0]["target"], "school:56EF/roster");
    assert_eq!(imports[0]["details"]["students"]["added"], 6);

    // The same file again changes nothing: no write, no audit row, nothing in the change log.
    let before = snapshot(&app).await;
    let facts = change_log_and_audit(&app).await;
    let (status, report) = import(&app, "56EF", &bulk, false).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], false);
    assert_eq!(report["students"]["unchanged"], 6);
    assert_eq!(report["parents"]["unchanged"], 4);
    assert_eq!(
        counts(&report, "guardianships"),
        serde_json::json!({"added": 0, "removed": 0})
    );
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(change_log_and_audit(&app).await, facts);

    // A delta changes only what it names: Lucas leaves, Mila may no longer log in but stays
    // enrolled, Noor arrives with an existing parent, Hanneke's guardianship ends.
    let (status, report) = import(&app, "56EF", &sample("56EF-delta"), false).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["mode"], "delta");
    assert_eq!(
        counts(&report, "students"),
        serde_json::json!({"added": 1, "updated": 1, "unchanged": 0, "leaving": 1, "reenrolled": 0})
    );
    assert_eq!(
        counts(&report, "guardianships"),
        serde_json::json!({"added": 1, "removed": 1})
    );
    assert_eq!(enrolled_at(&app, "56EF", "560005").await, None);
    assert_eq!(
        enrolled_at(&app, "56EF", "560006").await.as_deref(),
        Some("56EF")
    );
    assert_eq!(login_enabled(&app, "56EF", "560006").await, 0);
    assert_eq!(login_enabled(&app, "56EF", "560001").await, 1);
    assert_eq!(
        children(&app, "56EF", "r.dejong").await,
        ["560003", "560007"]
    );
    assert!(children(&app, "56EF", "h.bos").await.is_empty());
    assert_eq!(
        account(&app, "56EF", "560007").await.birth_date.as_deref(),
        Some("2014-02-01")
    );
    // Students the delta does not name stay, with their guardianships.
    assert_eq!(
        enrolled_at(&app, "56EF", "560001").await.as_deref(),
        Some("56EF")
    );
    assert_eq!(
        children(&app, "56EF", "m.vandenberg").await,
        ["560001", "560002"]
    );

    // The delta again: nothing to do.
    let facts = change_log_and_audit(&app).await;
    let (_, report) = import(&app, "56EF", &sample("56EF-delta"), false).await;
    assert_eq!(report["applied"], false, "{report}");
    assert_eq!(change_log_and_audit(&app).await, facts);

    // A bulk file that leaves students out: they leave, and their guardianships end.
    let mut smaller = sample("56EF");
    let users: String = text(&smaller, "users.csv")
        .lines()
        .filter(|l| !l.starts_with("s-1002") && !l.starts_with("s-1003"))
        .map(|l| {
            l.replace("\"s-1001,s-1002\"", "s-1001")
                .replace(",s-1003", ",")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    replace(&mut smaller, "users.csv", users);
    let demographics: String = text(&smaller, "demographics.csv")
        .lines()
        .filter(|l| !l.starts_with("s-1002") && !l.starts_with("s-1003"))
        .map(|l| format!("{l}\n"))
        .collect();
    replace(&mut smaller, "demographics.csv", demographics);
    let (status, report) = import(&app, "56EF", &smaller, false).await;
    assert_eq!(status, 200, "{report}");
    // 560002 and 560003 are missing, and so is the delta's 560007; Lucas (560005) is back.
    assert_eq!(report["students"]["leaving"], 3, "{report}");
    assert_eq!(report["students"]["reenrolled"], 1, "{report}");
    assert_eq!(enrolled_at(&app, "56EF", "560002").await, None);
    assert_eq!(
        enrolled_at(&app, "56EF", "560005").await.as_deref(),
        Some("56EF")
    );
    assert_eq!(children(&app, "56EF", "m.vandenberg").await, ["560001"]);
    assert!(children(&app, "56EF", "r.dejong").await.is_empty());
    assert_eq!(login_enabled(&app, "56EF", "560006").await, 1);
}

/// A 12AB roster that describes the demo school as it is (the demo itself is loaded by a
/// roster import with these sourcedIds, `src/demo/12AB/`): `without` students left out,
/// `renamed` student numbers changed.
fn demo_roster(without: &[&str], renamed: &[(&str, &str)]) -> Files {
    let students = [
        ("100001", "Jan", "Vries", "de", "2012-03-14"),
        ("100002", "Sara", "Bakker", "", "2010-02-01"),
        ("100003", "Lotte", "Visser", "", "2007-01-10"),
        ("100004", "Emma", "Vries", "de", "2014-09-01"),
    ];
    let mut users = String::from(
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds\n",
    );
    let mut demographics = String::from("sourcedId,birthDate\n");
    let mut children = Vec::new();
    for (number, given, family, middle, birth) in students {
        if without.contains(&number) {
            continue;
        }
        let username = renamed
            .iter()
            .find(|(from, _)| *from == number)
            .map_or(number, |(_, to)| *to);
        users.push_str(&format!(
            "demo-{number},active,,true,org-12ab,student,{username},,{given},{family},{middle},,,,,\n"
        ));
        demographics.push_str(&format!("demo-{number},{birth}\n"));
        if number == "100001" || number == "100004" {
            children.push(format!("demo-{number}"));
        }
    }
    users.push_str(&format!(
        "demo-p1,active,,true,org-12ab,parent,p.devries,,Petra,Vries,de,,,,,\"{}\"\n",
        children.join(",")
    ));
    let mut files = sample("56EF");
    replace(
        &mut files,
        "orgs.csv",
        "sourcedId,name,type,identifier\norg-12ab,Lyceum De Vecht,school,12AB\n",
    );
    replace(&mut files, "users.csv", users);
    replace(&mut files, "demographics.csv", demographics);
    files
}

async fn a_bulk_import_without_a_child_ends_the_partners_access(app: TestApp) {
    let tokens = app.sara_tokens("openid rooster huiswerk").await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.introspect(&access).await["active"], true);

    // The demo school as it is: nothing changes, nobody leaves, Sara's token lives on.
    let (status, report) = import(&app, "12AB", &demo_roster(&[], &[]), false).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["students"]["unchanged"], 4, "{report}");
    assert_eq!(report["students"]["leaving"], 0);
    assert_eq!(
        report["guardianships"],
        serde_json::json!({"added": 0, "removed": 0})
    );
    assert_eq!(app.introspect(&access).await["active"], true);

    // Sara is not in the next export: she has left, and her token stops at once.
    let (status, report) = import(&app, "12AB", &demo_roster(&["100002"], &[]), false).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["students"]["leaving"], 1, "{report}");
    assert_eq!(
        app.introspect(&access).await,
        serde_json::json!({"active": false})
    );

    // She comes back: enrolled again, but the consent from before does not return.
    let (status, report) = import(&app, "12AB", &demo_roster(&[], &[]), false).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["students"]["reenrolled"], 1, "{report}");
    assert_eq!(
        enrolled_at(&app, "12AB", "100002").await.as_deref(),
        Some("12AB")
    );
    assert_eq!(
        app.introspect(&access).await,
        serde_json::json!({"active": false})
    );
    let platform = app.management_token("platform-demo").await;
    let (_, grants) = app
        .admin("GET", "/api/admin/schools/12AB/grants", &platform, None)
        .await;
    assert_eq!(grants["count"], 0, "{grants}");
}

async fn a_renamed_username_keeps_its_grants(app: TestApp) {
    let (status, _) = import(&app, "12AB", &demo_roster(&[], &[]), false).await;
    assert_eq!(status, 200);
    let tokens = app.sara_tokens("openid rooster huiswerk").await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let sara = account(&app, "12AB", "100002").await;

    // The SIS renumbers Sara, and swaps two others' numbers: same people, same grants.
    let (status, report) = import(
        &app,
        "12AB",
        &demo_roster(
            &[],
            &[
                ("100002", "100102"),
                ("100001", "100003"),
                ("100003", "100001"),
            ],
        ),
        false,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["students"]["updated"], 3, "{report}");
    assert_eq!(report["students"]["leaving"], 0);
    assert_eq!(account(&app, "12AB", "100102").await.id, sara.id);
    assert_eq!(account(&app, "12AB", "100001").await.given_name, "Lotte");
    assert_eq!(app.introspect(&access).await["active"], true);
    let platform = app.management_token("platform-demo").await;
    let (_, grants) = app
        .admin("GET", "/api/admin/schools/12AB/grants", &platform, None)
        .await;
    assert_eq!(grants["grants"][0]["student_number"], "100102", "{grants}");
}

/// Each broken file: a 400 naming file, line and column, and the database as it was.
async fn broken_files_change_nothing(app: TestApp) {
    app.state
        .store
        .insert_school("56EF", "Het Baken")
        .await
        .unwrap();
    let (status, _) = import(&app, "56EF", &sample("56EF"), false).await;
    assert_eq!(status, 200);
    let good = sample("56EF");
    let users = text(&good, "users.csv");
    let mut cases: Vec<(&str, Files, Place<'_>)> = Vec::new();

    let mut f = good.clone();
    replace(
        &mut f,
        "users.csv",
        users.replacen(",username,", ",login,", 1),
    );
    cases.push((
        "missing column",
        f,
        ("users.csv", Some(1), Some("username")),
    ));

    let mut f = good.clone();
    replace(&mut f, "users.csv", users.replace("s-1003,", "s-1002,"));
    cases.push((
        "duplicate sourcedId",
        f,
        ("users.csv", Some(4), Some("sourcedId")),
    ));

    let mut f = good.clone();
    replace(&mut f, "users.csv", users.replace(",s-1003\n", ",s-9999\n"));
    cases.push((
        "agent nowhere",
        f,
        ("users.csv", Some(9), Some("agentSourcedIds")),
    ));

    let mut f = good.clone();
    replace(&mut f, "users.csv", users.replace(",relative,", ",oom,"));
    cases.push(("unknown role", f, ("users.csv", Some(10), Some("role"))));

    let mut f = good.clone();
    replace(
        &mut f,
        "orgs.csv",
        text(&good, "orgs.csv").replace("56EF", "99ZZ"),
    );
    cases.push((
        "another school's BRIN",
        f,
        ("orgs.csv", Some(2), Some("identifier")),
    ));

    let mut f = good.clone();
    replace(
        &mut f,
        "demographics.csv",
        text(&good, "demographics.csv").replace("2011-01-20", "2011-02-30"),
    );
    cases.push((
        "invalid date",
        f,
        ("demographics.csv", Some(4), Some("birthDate")),
    ));

    let mut f = good.clone();
    replace(
        &mut f,
        "users.csv",
        users.replace("Horst,ter", "H\u{f6}rst,ter"),
    );
    let latin1: Vec<u8> = text(&f, "users.csv")
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    replace(&mut f, "users.csv", latin1);
    cases.push(("not UTF-8", f, ("users.csv", Some(7), Some("familyName"))));

    let mut f = good.clone();
    replace(
        &mut f,
        "users.csv",
        users.replace("Julia,Dijk", &format!("Julia,{}", "D".repeat(1_000_000))),
    );
    cases.push((
        "a row of a million characters",
        f,
        ("users.csv", Some(5), Some("familyName")),
    ));

    let mut f = good.clone();
    f.push(("../users.csv".into(), users.clone().into_bytes()));
    cases.push(("a path outside the folder", f, ("../users.csv", None, None)));

    // Found against the database: a new sourcedId taking a username the school already
    // gave to someone else, and a delta agent that is neither in the file nor known.
    let mut f = good.clone();
    replace(&mut f, "users.csv", users.replace("s-1001,", "s-1099,"));
    let demographics = text(&good, "demographics.csv").replace("s-1001,", "s-1099,");
    replace(&mut f, "demographics.csv", demographics);
    cases.push((
        "a username of someone else",
        f,
        ("users.csv", Some(2), Some("username")),
    ));

    let mut f = sample("56EF-delta");
    let delta_users = text(&f, "users.csv").replace(",p-2002\n", ",p-9999\n");
    replace(&mut f, "users.csv", delta_users);
    cases.push((
        "a delta agent nobody knows",
        f,
        ("users.csv", Some(4), Some("agentSourcedIds")),
    ));

    let before = snapshot(&app).await;
    let facts = change_log_and_audit(&app).await;
    for (what, files, (file, line, column)) in cases {
        let (status, report) = import(&app, "56EF", &files, false).await;
        assert_eq!(status, 400, "{what}: {report}");
        assert_eq!(report["applied"], false, "{what}");
        let errors = report["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["file"] == file
                && e["line"].as_u64() == line
                && e["column"].as_str() == column
                && e["message"].as_str().is_some_and(|m| !m.is_empty())),
            "{what}: expected an error at {file}:{line:?} [{column:?}], got {report}"
        );
        assert_eq!(snapshot(&app).await, before, "{what}");
        assert_eq!(change_log_and_audit(&app).await, facts, "{what}");
    }

    // A zip bomb: a few hundred kilobytes that inflate past the cap.
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, bytes) in good.iter().filter(|(n, _)| n != "users.csv") {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.start_file("56EF/users.csv", options).unwrap();
    let zeros = vec![b' '; 1024 * 1024];
    for _ in 0..260 {
        writer.write_all(&zeros).unwrap();
    }
    let bomb = writer.finish().unwrap().into_inner();
    assert!(bomb.len() < 2 * 1024 * 1024, "{}", bomb.len());
    let token = app.management_token("platform-demo").await;
    let (status, report) = post_zip(&app, &token, "56EF", bomb, false).await;
    assert_eq!(status, 400, "{report}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("larger"),
        "{report}"
    );
    assert_eq!(snapshot(&app).await, before);

    // Not a zip at all, and not declared as one.
    let (status, report) = post_zip(&app, &token, "56EF", b"not a zip".to_vec(), false).await;
    assert_eq!(status, 400, "{report}");
    let response = app
        .backchannel()
        .post(app.url("/api/admin/schools/56EF/roster"))
        .bearer_auth(&token)
        .header("Content-Type", "text/csv")
        .body(users.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(change_log_and_audit(&app).await, facts);
}

async fn only_the_schools_manager_imports_its_roster(app: TestApp) {
    app.state
        .store
        .insert_school("56EF", "Het Baken")
        .await
        .unwrap();
    let beheer = app.management_token("beheer-12ab-demo").await;
    let zip = zip_of(&sample("56EF"));
    let (status, body) = post_zip(&app, &beheer, "56EF", zip.clone(), false).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = post_zip(&app, "no-token", "56EF", zip.clone(), false).await;
    assert_eq!(status, 401);
    let platform = app.management_token("platform-demo").await;
    let (status, body) = post_zip(&app, &platform, "77GH", zip.clone(), false).await;
    assert_eq!(status, 404, "{body}");
    // 12AB's manager, with the sample relabelled for 12AB, may.
    let mut files = sample("56EF");
    let orgs = text(&files, "orgs.csv").replace("56EF", "12AB");
    replace(&mut files, "orgs.csv", orgs);
    let (status, body) = post_zip(&app, &beheer, "12AB", zip_of(&files), true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["students"]["added"], 6);
    // A bulk import of a different list would let the demo's students leave (dry run only).
    assert_eq!(body["students"]["leaving"], 4, "{body}");
}

/// The console's engine: a folder, a summary, and an exit code that says whether it worked.
async fn the_console_imports_a_folder(app: TestApp) {
    use poortwachter::onboarding::roster::cli::run_cli;
    app.state
        .store
        .insert_school("56EF", "Het Baken")
        .await
        .unwrap();
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/roster/56EF");
    let code = run_cli(&app.state, "56EF", &folder, true, true)
        .await
        .unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(app
        .state
        .store
        .find_account_by_login("56EF", "560001")
        .await
        .unwrap()
        .is_none());
    let code = run_cli(&app.state, "56EF", &folder, false, false)
        .await
        .unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(app
        .state
        .store
        .find_account_by_login("56EF", "560001")
        .await
        .unwrap()
        .is_some());

    let broken = tempfile::tempdir().unwrap();
    for (name, bytes) in sample("56EF") {
        std::fs::write(broken.path().join(&name), bytes).unwrap();
    }
    std::fs::remove_file(broken.path().join("orgs.csv")).unwrap();
    let before = snapshot(&app).await;
    let code = run_cli(&app.state, "56EF", broken.path(), false, false)
        .await
        .unwrap();
    assert_eq!(code, std::process::ExitCode::from(1));
    assert_eq!(snapshot(&app).await, before);
    assert!(run_cli(&app.state, "99XX", &folder, false, false)
        .await
        .is_err());
}

/// Two imports of the same school at once: each is all or nothing, never a 500.
async fn concurrent_imports_are_all_or_nothing(app: TestApp) {
    app.state
        .store
        .insert_school("56EF", "Het Baken")
        .await
        .unwrap();
    let files = sample("56EF");
    let (a, b) = tokio::join!(
        import(&app, "56EF", &files, false),
        import(&app, "56EF", &files, false)
    );
    for (status, report) in [&a, &b] {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::CONFLICT,
            "{status}: {report}"
        );
    }
    let added: u64 = [&a, &b]
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, report)| report["students"]["added"].as_u64().unwrap())
        .sum();
    assert_eq!(added, 6, "{a:?} {b:?}");
    let (status, report) = import(&app, "56EF", &files, false).await;
    assert_eq!(status, 200);
    assert_eq!(report["students"]["unchanged"], 6, "{report}");
}

on_every_backend!(
    concurrent_imports_are_all_or_nothing,
    the_sample_school_imports_in_bulk_then_delta,
    a_bulk_import_without_a_child_ends_the_partners_access,
    a_renamed_username_keeps_its_grants,
    broken_files_change_nothing,
    only_the_schools_manager_imports_its_roster,
    the_console_imports_a_folder,
);

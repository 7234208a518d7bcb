//! The demo school-data API (`127.0.0.1:9200`): made-up timetable, homework and grades for the
//! demo students, behind Bearer tokens (RFC 6750) that it introspects at Poortwachter on every
//! call (RFC 7662), so a closed link, a withdrawn consent or a school's closure counts at once.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::headers::authorization::Bearer;
use axum_extra::headers::Authorization;
use axum_extra::TypedHeader;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ApiError, Assignment, Grade, Lesson, StudentData};

/// What the school-data API needs to know: where Poortwachter is and its own credentials.
#[derive(Debug, Clone)]
pub struct SchoolApiConfig {
    /// Poortwachter's issuer URL; `/introspect` is found below it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

impl SchoolApiConfig {
    /// The demo resource server `schooldata-api-demo` at `issuer`.
    pub fn demo(issuer: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id: "schooldata-api-demo".into(),
            client_secret: "schooldata-api-demo-secret".into(),
        }
    }
}

struct Api {
    config: SchoolApiConfig,
    http: reqwest::Client,
}

#[derive(Clone)]
struct ApiState(Arc<Api>);

/// The three kinds of data, each behind the scope of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Rooster,
    Huiswerk,
    Cijfers,
}

impl Resource {
    fn scope(self) -> &'static str {
        match self {
            Resource::Rooster => "rooster",
            Resource::Huiswerk => "huiswerk",
            Resource::Cijfers => "cijfers",
        }
    }
}

/// The routes: `GET /rooster`, `GET /huiswerk`, `GET /cijfers`.
pub fn router(config: SchoolApiConfig) -> Router {
    let state = ApiState(Arc::new(Api {
        config,
        http: super::http_client(),
    }));
    Router::new()
        .route(
            "/rooster",
            get(
                |s: State<ApiState>, t: Option<TypedHeader<Authorization<Bearer>>>| {
                    serve_resource(s, t, Resource::Rooster)
                },
            ),
        )
        .route(
            "/huiswerk",
            get(
                |s: State<ApiState>, t: Option<TypedHeader<Authorization<Bearer>>>| {
                    serve_resource(s, t, Resource::Huiswerk)
                },
            ),
        )
        .route(
            "/cijfers",
            get(
                |s: State<ApiState>, t: Option<TypedHeader<Authorization<Bearer>>>| {
                    serve_resource(s, t, Resource::Cijfers)
                },
            ),
        )
        .with_state(state)
}

/// The parts of Poortwachter's introspection answer this API uses (see `oauth::introspect`).
#[derive(Debug, Deserialize, Default)]
struct Introspection {
    #[serde(default)]
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    school: Option<String>,
    /// The real student behind a partner's token.
    #[serde(default)]
    student: Option<Person>,
    /// The account behind a first-party app's token.
    #[serde(default)]
    account: Option<Person>,
    /// Scopes the token holds that a school closure withholds now, with the school's reason.
    #[serde(default)]
    withheld: Vec<Withheld>,
}

#[derive(Debug, Deserialize)]
struct Person {
    #[serde(default)]
    student_number: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    school: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Withheld {
    scope: String,
    reason: String,
    #[serde(default)]
    until: Option<i64>,
}

async fn serve_resource(
    State(api): State<ApiState>,
    bearer: Option<TypedHeader<Authorization<Bearer>>>,
    resource: Resource,
) -> Response {
    // RFC 6750 §3.1: a request without credentials gets the challenge without an error code.
    let Some(TypedHeader(Authorization(bearer))) = bearer else {
        return challenge(
            StatusCode::UNAUTHORIZED,
            r#"Bearer realm="schooldata""#,
            json!({ "error": "invalid_request", "reason": "Er is geen toegangstoken meegestuurd." }),
        );
    };
    let answer = match introspect(&api.0, bearer.token()).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "introspection at Poortwachter failed");
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "temporarily_unavailable",
                             "reason": "Poortwachter is nu niet bereikbaar; probeer het zo opnieuw." })),
            )
                .into_response();
            no_store(&mut response);
            return response;
        }
    };
    if !answer.active {
        return challenge(
            StatusCode::UNAUTHORIZED,
            r#"Bearer realm="schooldata", error="invalid_token""#,
            json!({ "error": "invalid_token",
                    "reason": "Dit toegangstoken is niet (meer) geldig." }),
        );
    }
    let scope = resource.scope();
    let granted = answer
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .any(|s| s == scope);
    if !granted {
        // Withheld by a closure: the school's own reason; otherwise never given or withdrawn.
        let (reason, until) = match answer.withheld.iter().find(|w| w.scope == scope) {
            Some(w) => (w.reason.clone(), w.until),
            None => (
                format!("Toegang tot {scope} is niet gegeven of is ingetrokken."),
                None,
            ),
        };
        let mut body = serde_json::to_value(ApiError {
            error: "insufficient_scope".into(),
            reason: Some(reason),
            scope: Some(scope.into()),
        })
        .unwrap_or_default();
        if let Some(until) = until {
            body["withheld_until"] = json!(until);
        }
        return challenge(
            StatusCode::FORBIDDEN,
            &format!(r#"Bearer realm="schooldata", error="insufficient_scope", scope="{scope}""#),
            body,
        );
    }
    let Some((student_number, school)) = whose(&answer) else {
        return challenge(
            StatusCode::FORBIDDEN,
            &format!(r#"Bearer realm="schooldata", error="insufficient_scope", scope="{scope}""#),
            json!({ "error": "insufficient_scope", "scope": scope,
                    "reason": "Dit token hoort niet bij een leerling." }),
        );
    };
    let mut response = match resource {
        Resource::Rooster => Json(StudentData {
            items: timetable(&student_number),
            student_number,
            school,
        })
        .into_response(),
        Resource::Huiswerk => Json(StudentData {
            items: homework(&student_number),
            student_number,
            school,
        })
        .into_response(),
        Resource::Cijfers => Json(StudentData {
            items: grades(&student_number),
            student_number,
            school,
        })
        .into_response(),
    };
    no_store(&mut response);
    response
}

/// RFC 7662 §2.1: the token, authenticated as the resource server (client_secret_basic).
async fn introspect(api: &Api, token: &str) -> anyhow::Result<Introspection> {
    let response = api
        .http
        .post(format!("{}/introspect", api.config.issuer))
        .basic_auth(&api.config.client_id, Some(&api.config.client_secret))
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "introspection answered {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// The student whose data the token reaches: a partner's token names the student; a
/// first-party token of a student names the account.
fn whose(answer: &Introspection) -> Option<(String, String)> {
    if let Some(student) = &answer.student {
        let number = student.student_number.clone()?;
        let school = student.school.clone().or(answer.school.clone())?;
        return Some((number, school));
    }
    let account = answer.account.as_ref()?;
    if account.role.as_deref() != Some("student") {
        return None;
    }
    Some((account.username.clone()?, account.school.clone()?))
}

fn challenge(status: StatusCode, www_authenticate: &str, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(www_authenticate) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

// Made-up data, the same for a student number on every call: picks driven by its digest.

const SUBJECTS: [(&str, &str); 9] = [
    ("Nederlands", "VRS"),
    ("Engels", "BKR"),
    ("Wiskunde", "DJK"),
    ("Geschiedenis", "HNS"),
    ("Biologie", "MLR"),
    ("Aardrijkskunde", "PTR"),
    ("Frans", "LBR"),
    ("Natuurkunde", "KST"),
    ("Lichamelijke opvoeding", "SPR"),
];

const HOURS: [(&str, &str); 5] = [
    ("08:30", "09:20"),
    ("09:20", "10:10"),
    ("10:30", "11:20"),
    ("11:20", "12:10"),
    ("12:40", "13:30"),
];

const DAYS: [&str; 3] = ["maandag", "dinsdag", "woensdag"];

fn digest(student_number: &str) -> [u8; 32] {
    Sha256::digest(student_number.as_bytes()).into()
}

fn subject(seed: &[u8; 32], i: usize) -> (&'static str, &'static str) {
    SUBJECTS[usize::from(seed[i % 32]) % SUBJECTS.len()]
}

fn timetable(student_number: &str) -> Vec<Lesson> {
    let seed = digest(student_number);
    let mut lessons = Vec::new();
    for (d, day) in DAYS.iter().enumerate() {
        for (h, (start, end)) in HOURS.iter().enumerate() {
            let i = d * HOURS.len() + h;
            let (name, teacher) = subject(&seed, i);
            lessons.push(Lesson {
                day: (*day).into(),
                start: (*start).into(),
                end: (*end).into(),
                subject: name.into(),
                teacher: teacher.into(),
                room: format!(
                    "{}.{:02}",
                    1 + seed[(i + 7) % 32] % 3,
                    1 + seed[(i + 11) % 32] % 20
                ),
            });
        }
    }
    lessons
}

fn homework(student_number: &str) -> Vec<Assignment> {
    let seed = digest(student_number);
    let tasks = [
        "Lees hoofdstuk {n} en maak de opdrachten 1 tot en met 6.",
        "Leer de woordjes van hoofdstuk {n}.",
        "Maak de oefentoets van paragraaf {n}.",
        "Schrijf een samenvatting van paragraaf {n}.",
    ];
    (0..3)
        .map(|i| {
            let (name, _) = subject(&seed, 20 + i);
            let task = tasks[usize::from(seed[(i + 3) % 32]) % tasks.len()];
            Assignment {
                subject: name.into(),
                due: DAYS[i % DAYS.len()].into(),
                description: task.replace("{n}", &(1 + seed[(i + 5) % 32] % 8).to_string()),
            }
        })
        .collect()
}

fn grades(student_number: &str) -> Vec<Grade> {
    let seed = digest(student_number);
    let kinds = [
        "Proefwerk",
        "Schriftelijke overhoring",
        "Praktische opdracht",
    ];
    (0..4)
        .map(|i| {
            let (name, _) = subject(&seed, 24 + i);
            // 4,5 to 9,4: one decimal, written the Dutch way.
            let tenths = 45 + u32::from(seed[(i + 13) % 32]) % 50;
            Grade {
                subject: name.into(),
                description: kinds[i % kinds.len()].into(),
                grade: format!("{},{}", tenths / 10, tenths % 10),
                weight: 1 + u32::from(seed[(i + 17) % 32]) % 3,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_is_the_same_for_a_student_and_differs_between_students() {
        assert_eq!(timetable("100001"), timetable("100001"));
        assert_eq!(grades("100001"), grades("100001"));
        assert_eq!(timetable("100001").len(), 15);
        assert_eq!(homework("100002").len(), 3);
        assert_ne!(timetable("100001"), timetable("100002"));
        for grade in grades("100003") {
            assert!(grade.grade.contains(','), "{grade:?}");
        }
    }

    #[test]
    fn whose_data_a_token_reaches() {
        let partner: Introspection = serde_json::from_value(json!({
            "active": true, "school": "12AB",
            "student": { "id": "x", "student_number": "100001", "school": "12AB" }
        }))
        .unwrap();
        assert_eq!(whose(&partner), Some(("100001".into(), "12AB".into())));
        let parent: Introspection = serde_json::from_value(json!({
            "active": true, "account": { "username": "p.devries", "role": "parent", "school": "12AB" }
        }))
        .unwrap();
        assert_eq!(whose(&parent), None);
    }
}

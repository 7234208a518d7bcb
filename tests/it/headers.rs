//! Every page of ours (login, activation, consent, account, error pages, the consoles), loaded
//! as a browser gets it: a CSP with `frame-ancestors 'none'`,
//! `X-Content-Type-Options: nosniff`, `Cache-Control: no-store` (each of these pages carries a
//! session or a CSRF token), and HTML that references nothing on another origin. The demo
//! apps' pages are not ours and are left out.

use reqwest::header::{HeaderMap, CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION};
use scraper::{Html, Selector};

use crate::helpers::{TestApp, OPERATOR_TOTP, PASSWORD, SUPERVISOR_TOTP};
use crate::on_every_backend;

/// A browser that keeps cookies and follows our redirects by hand, keeping the headers of the
/// page it ends on.
struct Visitor {
    http: reqwest::Client,
    issuer: String,
}

struct Loaded {
    url: String,
    status: reqwest::StatusCode,
    headers: HeaderMap,
    html: String,
}

impl Visitor {
    fn new(app: &TestApp) -> Visitor {
        Visitor {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            issuer: app.issuer.clone(),
        }
    }

    async fn follow(&self, mut response: reqwest::Response) -> Loaded {
        loop {
            if response.status().is_redirection() {
                let location = response.headers()[LOCATION].to_str().unwrap().to_string();
                let next = if location.starts_with('/') {
                    format!("{}{location}", self.issuer)
                } else {
                    location
                };
                assert!(next.starts_with(&self.issuer), "left our server for {next}");
                response = self.http.get(&next).send().await.unwrap();
                continue;
            }
            return Loaded {
                url: response.url().to_string(),
                status: response.status(),
                headers: response.headers().clone(),
                html: response.text().await.unwrap(),
            };
        }
    }

    async fn get(&self, path: &str) -> Loaded {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.issuer)
        } else {
            path.to_string()
        };
        let response = self.http.get(url).send().await.unwrap();
        self.follow(response).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Loaded {
        let response = self
            .http
            .post(format!("{}{path}", self.issuer))
            .form(form)
            .send()
            .await
            .unwrap();
        self.follow(response).await
    }
}

fn field(html: &str, name: &str) -> String {
    let doc = Html::parse_document(html);
    let selector = Selector::parse(&format!("input[name=\"{name}\"]")).unwrap();
    doc.select(&selector)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        .to_string()
}

/// The headers and the HTML of one page, as the module comment says.
fn assert_page_is_safe(app: &TestApp, name: &str, page: &Loaded) {
    let at = format!("{name} ({} {})", page.status, page.url);
    let header = |h: &reqwest::header::HeaderName| {
        page.headers
            .get(h)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{at}: no {h} header"))
    };
    let csp = header(&CONTENT_SECURITY_POLICY);
    for directive in [
        "frame-ancestors 'none'",
        "default-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{at}: CSP without {directive}: {csp}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{at}: {csp}"
    );
    assert_eq!(
        header(&reqwest::header::X_CONTENT_TYPE_OPTIONS),
        "nosniff",
        "{at}"
    );
    assert!(header(&CACHE_CONTROL).contains("no-store"), "{at}");
    assert_eq!(header(&reqwest::header::X_FRAME_OPTIONS), "DENY", "{at}");
    assert!(
        header(&reqwest::header::CONTENT_TYPE).starts_with("text/html"),
        "{at}"
    );

    let (references, foreign) = references(&app.issuer, &page.html);
    assert!(
        foreign.is_empty(),
        "{at}: references to another origin: {foreign:?}"
    );
    assert!(references > 0, "{at}: no references at all? {}", page.html);
    assert!(
        !page.html.contains("<script"),
        "{at}: our pages run no script"
    );
}

/// How many URLs the page refers to (loads, links, posts), and those on another origin than
/// `issuer`; scheme-relative URLs (`//host/x`) count as theirs.
fn references(issuer: &str, html: &str) -> (usize, Vec<String>) {
    let base = url::Url::parse(issuer).unwrap();
    let doc = Html::parse_document(html);
    let any = Selector::parse("*").unwrap();
    let mut count = 0;
    let mut foreign = Vec::new();
    for element in doc.select(&any) {
        for attr in [
            "src",
            "href",
            "action",
            "formaction",
            "srcset",
            "poster",
            "data",
        ] {
            let Some(value) = element.value().attr(attr) else {
                continue;
            };
            count += 1;
            let reached = base.join(value.trim());
            if !reached.is_ok_and(|u| u.origin() == base.origin() || u.scheme() == "data") {
                foreign.push(format!("<{} {attr}=\"{value}\">", element.value().name()));
            }
        }
    }
    (count, foreign)
}

#[test]
fn references_to_another_origin_are_found() {
    let issuer = "http://127.0.0.1:8080";
    let html = r#"<link rel="stylesheet" href="/static/style.css"><a href="?lang=en">en</a>
        <form action="/login"></form><img src="//cdn.example/x.png">
        <script src="https://cdn.example/x.js"></script><a href="http://127.0.0.1:9000/">app</a>"#;
    let (count, foreign) = references(issuer, html);
    assert_eq!(count, 6);
    assert_eq!(foreign.len(), 3, "{foreign:?}");
    assert!(foreign[0].contains("cdn.example/x.png"));
}

/// Every page a person can reach: login, activation, consent, the account page, error pages.
async fn every_page_carries_the_security_headers_and_loads_only_from_us(app: TestApp) {
    let visitor = Visitor::new(&app);

    let authorization = app.authorization("studyspace-demo", "openid naam rooster");
    let login = visitor.get(&authorization.url()).await;
    assert!(login.html.contains("name=\"password\""), "{}", login.html);
    assert_page_is_safe(&app, "login", &login);

    let activate = visitor.get("/activate").await;
    assert_page_is_safe(&app, "activate", &activate);

    let refused_login = visitor
        .post(
            "/login",
            &[
                ("csrf", &field(&login.html, "csrf")),
                ("request", &field(&login.html, "request")),
                ("school", "12AB"),
                ("username", "p.devries"),
                ("password", "fout-wachtwoord"),
            ],
        )
        .await;
    assert_page_is_safe(&app, "login with a wrong password", &refused_login);

    let consent = visitor
        .post(
            "/login",
            &[
                ("csrf", &field(&refused_login.html, "csrf")),
                ("request", &field(&refused_login.html, "request")),
                ("school", "12AB"),
                ("username", "p.devries"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(consent.html.contains("decision"), "{}", consent.html);
    assert_page_is_safe(&app, "consent", &consent);

    let account = visitor.get("/account").await;
    assert!(account.html.contains("/account/logout"), "{}", account.html);
    assert_page_is_safe(&app, "account", &account);
    let reads = visitor.get("/account/reads").await;
    assert_eq!(reads.status, 200, "{}", reads.html);
    assert_page_is_safe(&app, "account: Wie keek mee", &reads);

    // Error pages: an unknown partner at /authorize, a form without its CSRF token.
    let unknown = visitor
        .get(&app.authorization("onbekend", "openid").url())
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.html);
    assert_page_is_safe(&app, "error: unknown client", &unknown);
    let forged = visitor.post("/account/withdraw", &[("grant", "x")]).await;
    assert!(forged.status.is_client_error(), "{}", forged.html);
    assert_page_is_safe(&app, "error: no CSRF token", &forged);

    // A fresh browser at /account is sent to a login page, which is just as safe.
    let stranger = Visitor::new(&app).get("/account").await;
    assert_page_is_safe(&app, "account without a session", &stranger);

    // The consoles: the login, and after the password the TOTP page.
    let console = Visitor::new(&app);
    let console_activate = Visitor::new(&app).get("/console/activate").await;
    assert_page_is_safe(&app, "console activation", &console_activate);
    let console_login = console.get("/console/login").await;
    assert!(
        console_login.html.contains("name=\"password\""),
        "{}",
        console_login.html
    );
    assert_page_is_safe(&app, "console login", &console_login);
    let totp = console
        .post(
            "/console/login",
            &[
                ("csrf", &field(&console_login.html, "csrf")),
                ("school", "12AB"),
                ("username", "beheer"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(
        totp.url.contains("/console/totp"),
        "{} {}",
        totp.url,
        totp.html
    );
    assert_page_is_safe(&app, "console TOTP", &totp);
    let school = console
        .post(
            "/console/totp",
            &[
                ("csrf", &field(&totp.html, "csrf")),
                ("code", &app.totp(SUPERVISOR_TOTP)),
            ],
        )
        .await;
    assert!(
        school.url.ends_with("/school"),
        "{} {}",
        school.url,
        school.html
    );
    assert_page_is_safe(&app, "school: partners", &school);
    for path in [
        "/school/closures",
        "/school/students",
        "/school/students/100001",
        "/school/audit",
        "/school/import",
    ] {
        let page = console.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.html);
        assert_page_is_safe(&app, path, &page);
    }

    let operator = Visitor::new(&app);
    let login = operator.get("/console/login").await;
    let totp = operator
        .post(
            "/console/login",
            &[
                ("csrf", &field(&login.html, "csrf")),
                ("school", ""),
                ("username", "operator"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let platform = operator
        .post(
            "/console/totp",
            &[
                ("csrf", &field(&totp.html, "csrf")),
                ("code", &app.totp(OPERATOR_TOTP)),
            ],
        )
        .await;
    assert!(
        platform.url.ends_with("/platform"),
        "{} {}",
        platform.url,
        platform.html
    );
    assert_page_is_safe(&app, "platform: partners", &platform);
    for path in ["/platform/clients", "/platform/audit"] {
        let page = operator.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.html);
        assert_page_is_safe(&app, path, &page);
    }

    // The stylesheet: our own, typed, not sniffed.
    let css = visitor.get("/static/style.css").await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert_eq!(css.headers["x-content-type-options"], "nosniff");
    assert!(
        !css.html.contains("@import") && !css.html.contains("url(http"),
        "{}",
        css.html
    );
}

on_every_backend!(every_page_carries_the_security_headers_and_loads_only_from_us);

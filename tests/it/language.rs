//! The language of a page is chosen once per request (`web::lang::Lang`): the language link,
//! then the cookie it set, then the browser's Accept-Language; `ui_locales` for a partner's
//! request.

use crate::helpers::*;

async fn page_language(
    app: &TestApp,
    url: &str,
    accept: Option<&str>,
    cookie: Option<&str>,
) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .cookie_store(true)
        .build()
        .unwrap();
    let absolute = if url.starts_with("http") {
        url.to_string()
    } else {
        app.url(url)
    };
    let mut request = client.get(absolute);
    if let Some(accept) = accept {
        request = request.header("accept-language", accept);
    }
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let html = request.send().await.unwrap().text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    doc.select(&scraper::Selector::parse("html").unwrap())
        .next()
        .and_then(|e| e.value().attr("lang").map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test]
async fn the_browser_link_and_cookie_choose_the_language() {
    let app = TestApp::spawn_sqlite().await;
    assert_eq!(page_language(&app, "/login", None, None).await, "nl");
    assert_eq!(
        page_language(&app, "/login", Some("en-GB,en;q=0.9"), None).await,
        "en"
    );
    assert_eq!(
        page_language(&app, "/login", Some("nl-NL,en;q=0.5"), None).await,
        "nl"
    );
    // The link beats the browser, the cookie the link left beats it too.
    assert_eq!(
        page_language(&app, "/login?lang=nl", Some("en"), None).await,
        "nl"
    );
    assert_eq!(
        page_language(&app, "/login", Some("en"), Some("pw_lang=nl")).await,
        "nl"
    );
    // A partner's request without ui_locales follows the browser; with it, ui_locales.
    let authorization = app.authorization(STUDYSPACE.0, "openid naam");
    assert_eq!(
        page_language(&app, &authorization.url(), Some("en"), None).await,
        "en"
    );
    let dutch = authorization.set("ui_locales", "de nl");
    assert_eq!(
        page_language(&app, &dutch.url(), Some("en"), None).await,
        "nl"
    );
}

//! Registrations by the platform operator: schools, partners (with secret rotation and
//! deactivation), resource servers, management clients, and the very first platform client
//! (`bootstrap`). The admin API and the CLI both call these functions.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{begin, commit_audited, Actor, Change, OnboardingError};
use crate::crypto::password::hash_password;
use crate::crypto::tokens::random_token;
use crate::domain::partner::{Accreditation, AccreditationStatus};
use crate::domain::scope::Scope;
use crate::storage::clients::{self, Client, ClientRecord};
use crate::storage::{from_ts, schools};
use crate::App;

/// Names of schools and clients: non-empty, at most this many characters.
pub const NAME_MAX_CHARS: usize = 200;
/// Redirect URIs per partner, and the length of each.
pub const REDIRECT_URIS_MAX: usize = 20;
pub const REDIRECT_URI_MAX_CHARS: usize = 2000;
/// Contact addresses per partner.
pub const CONTACTS_MAX: usize = 10;

// ---------------------------------------------------------------------------------------
// Validation: every refusal names the field, so an operator can fix the request.

/// A BRIN code: two digits and two letters or digits (`12AB`). Lower case is accepted and
/// stored upper case, as DUO writes them.
pub fn validate_brin(field: &str, brin: &str) -> Result<String, OnboardingError> {
    let upper = brin.trim().to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let valid = bytes.len() == 4
        && bytes[..2].iter().all(u8::is_ascii_digit)
        && bytes[2..].iter().all(u8::is_ascii_alphanumeric);
    if valid {
        Ok(upper)
    } else {
        Err(OnboardingError::invalid(
            field,
            "a BRIN code is two digits followed by two letters or digits, such as 12AB",
        ))
    }
}

/// A display name: trimmed, non-empty, at most 200 characters, no control characters.
pub fn validate_name(field: &str, name: &str) -> Result<String, OnboardingError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(OnboardingError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(OnboardingError::invalid(
            field,
            format!("at most {NAME_MAX_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(OnboardingError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(domain) => *domain == "localhost",
        url::Host::Ipv4(ip) => *ip == std::net::Ipv4Addr::LOCALHOST,
        url::Host::Ipv6(ip) => *ip == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// RFC 9700 §2.1 / §4.1.3 and RFC 6749 §3.1.2: an absolute URI without fragment, compared
/// by exact match, so no wildcard; `https` except for loopback (RFC 8252 §7.3).
pub fn validate_redirect_uri(field: &str, uri: &str) -> Result<String, OnboardingError> {
    if uri.chars().count() > REDIRECT_URI_MAX_CHARS {
        return Err(OnboardingError::invalid(
            field,
            format!("at most {REDIRECT_URI_MAX_CHARS} characters"),
        ));
    }
    if uri.contains('*') {
        return Err(OnboardingError::invalid(
            field,
            "wildcards are not allowed: redirect URIs are compared exactly",
        ));
    }
    if uri.contains('#') {
        return Err(OnboardingError::invalid(
            field,
            "a redirect URI must not contain a fragment (RFC 6749 §3.1.2)",
        ));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(OnboardingError::invalid(
            field,
            "must not contain spaces or control characters",
        ));
    }
    let parsed = url::Url::parse(uri).map_err(|_| {
        OnboardingError::invalid(
            field,
            "must be an absolute URI such as https://app.example/callback",
        )
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(OnboardingError::invalid(
            field,
            "must not contain user credentials",
        ));
    }
    let Some(host) = parsed.host() else {
        return Err(OnboardingError::invalid(field, "must name a host"));
    };
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => {
            return Err(OnboardingError::invalid(
                field,
                "must use https (http only for 127.0.0.1, [::1] or localhost)",
            ))
        }
        _ => {
            return Err(OnboardingError::invalid(
                field,
                "must use https (http only for 127.0.0.1, [::1] or localhost)",
            ))
        }
    }
    // The URL parser normalises (e.g. adds a trailing slash to a bare host); exact matching
    // compares against what the partner will send, so keep the partner's own spelling.
    Ok(uri.to_string())
}

pub fn validate_redirect_uris(
    field: &str,
    uris: &[String],
) -> Result<Vec<String>, OnboardingError> {
    if uris.is_empty() {
        return Err(OnboardingError::invalid(
            field,
            "at least one redirect URI is required",
        ));
    }
    if uris.len() > REDIRECT_URIS_MAX {
        return Err(OnboardingError::invalid(
            field,
            format!("at most {REDIRECT_URIS_MAX} redirect URIs"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, uri) in uris.iter().enumerate() {
        let uri = validate_redirect_uri(&format!("{field}[{i}]"), uri)?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// Only the scopes this server knows: `openid offline_access naam rooster huiswerk cijfers`.
pub fn validate_scopes(field: &str, scopes: &[String]) -> Result<Vec<Scope>, OnboardingError> {
    if scopes.is_empty() {
        return Err(OnboardingError::invalid(
            field,
            "at least one scope is required",
        ));
    }
    let mut out = Vec::new();
    for (i, s) in scopes.iter().enumerate() {
        let scope = Scope::parse(s).ok_or_else(|| {
            OnboardingError::invalid(
                &format!("{field}[{i}]"),
                format!(
                    "unknown scope {s:?}: use openid, offline_access, naam, rooster, huiswerk or cijfers"
                ),
            )
        })?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    out.sort();
    Ok(out)
}

/// RFC 7591 §2: `token_endpoint_auth_method`; partners are confidential clients.
pub fn validate_auth_method(field: &str, method: &str) -> Result<&'static str, OnboardingError> {
    match method {
        "client_secret_basic" => Ok("client_secret_basic"),
        "client_secret_post" => Ok("client_secret_post"),
        "private_key_jwt" => Ok("private_key_jwt"),
        _ => Err(OnboardingError::invalid(
            field,
            "must be client_secret_basic, client_secret_post or private_key_jwt",
        )),
    }
}

/// RFC 7591 §2 `jwks`: the client's public signing keys for `private_key_jwt`, as a JWK set
/// (public EC or RSA keys only, each with a `kid` when there are several, at most 16 KB).
pub fn validate_jwks(field: &str, jwks: &serde_json::Value) -> Result<String, OnboardingError> {
    let text = jwks.to_string();
    if text.len() > 16 * 1024 {
        return Err(OnboardingError::invalid(field, "must be at most 16 KB"));
    }
    let keys = josekit::jwk::JwkSet::from_bytes(text.as_bytes())
        .map_err(|_| OnboardingError::invalid(field, "must be a JWK set ({\"keys\": [...]})"))?;
    crate::oauth::client_keys::check_public(&keys)
        .map_err(|why| OnboardingError::invalid(field, &why))?;
    Ok(text)
}

/// RFC 7591 §2 `jwks_uri`: where the client publishes its keys; https (http only on the
/// loopback interface), at most 2,000 bytes.
pub fn validate_jwks_uri(field: &str, uri: &str) -> Result<String, OnboardingError> {
    if uri.len() > 2000 || !crate::oauth::client_keys::is_allowed_uri(uri) {
        return Err(OnboardingError::invalid(
            field,
            "must be an https URL (http only for 127.0.0.1 or localhost), at most 2,000 bytes",
        ));
    }
    Ok(uri.to_string())
}

/// `private_key_jwt` needs keys; keys without it are refused as a likely mistake.
fn check_keys_fit(method: &str, keys: (Option<&str>, Option<&str>)) -> Result<(), OnboardingError> {
    let has_keys = keys.0.is_some() || keys.1.is_some();
    if keys.0.is_some() && keys.1.is_some() {
        return Err(OnboardingError::invalid(
            "jwks",
            "give jwks or jwks_uri, not both",
        ));
    }
    if method.contains("private_key_jwt") && !has_keys {
        return Err(OnboardingError::invalid(
            "token_endpoint_auth_method",
            "private_key_jwt needs jwks or jwks_uri",
        ));
    }
    Ok(())
}

/// RFC 7591 §2 `contacts`: e-mail addresses of people responsible for the client.
pub fn validate_contacts(field: &str, contacts: &[String]) -> Result<Vec<String>, OnboardingError> {
    if contacts.len() > CONTACTS_MAX {
        return Err(OnboardingError::invalid(
            field,
            format!("at most {CONTACTS_MAX} contacts"),
        ));
    }
    let mut out = Vec::new();
    for (i, contact) in contacts.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let contact = contact.trim();
        let looks_like_address = contact
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !looks_like_address
            || contact.chars().count() > NAME_MAX_CHARS
            || contact.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(OnboardingError::invalid(
                &field,
                "must be an e-mail address (at most 200 characters)",
            ));
        }
        out.push(contact.to_string());
    }
    Ok(out)
}

fn scope_string(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A readable, unguessable client id: the name's letters and a random suffix
/// (`studyspace-4f9c2a1b`).
fn new_client_id(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 32 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "client" } else { slug };
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    format!("{slug}-{suffix}")
}

// ---------------------------------------------------------------------------------------
// What callers send and get back.

/// `POST /api/admin/schools`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchool {
    /// BRIN code: two digits and two letters or digits.
    #[schema(example = "56EF")]
    pub brin: String,
    #[schema(example = "Het Baken")]
    pub name: String,
}

/// `PATCH /api/admin/schools/{brin}`
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolPatch {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SchoolView {
    #[schema(example = "56EF")]
    pub brin: String,
    pub name: String,
}

/// `POST /api/admin/partners`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    #[schema(example = "Huiswerkinstituut Slim")]
    pub name: String,
    #[schema(example = json!(["https://slim.example/callback"]))]
    pub redirect_uris: Vec<String>,
    #[schema(example = json!(["openid", "naam", "rooster", "huiswerk"]))]
    pub scopes: Vec<String>,
    #[schema(example = "client_secret_basic")]
    pub token_endpoint_auth_method: String,
    #[serde(default)]
    #[schema(example = json!(["privacy@slim.example"]))]
    pub contacts: Vec<String>,
    /// For `private_key_jwt`: the public keys (a JWK set) or where they are published.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

/// `PATCH /api/admin/partners/{client_id}`: every field optional.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub contacts: Option<Vec<String>>,
    /// `false` deactivates the partner (no authorization, no tokens); `true` reactivates it.
    pub active: Option<bool>,
    /// `true`: authorization requests only after pushing them to `/par` (RFC 9126 §5).
    pub require_pushed_authorization_requests: Option<bool>,
    /// For `private_key_jwt`: the public keys (a JWK set), replacing `jwks_uri`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// For `private_key_jwt`: where the keys are published, replacing `jwks`.
    pub jwks_uri: Option<String>,
    /// Where the partner may send people after logging out (RP-Initiated Logout 1.0);
    /// checked like `redirect_uris`.
    pub post_logout_redirect_uris: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerView {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub contacts: Vec<String>,
    /// `pending` (new), `accredited` or `suspended`.
    #[schema(example = "pending")]
    pub accreditation: String,
    pub accredited_from: Option<DateTime<Utc>>,
    pub accredited_until: Option<DateTime<Utc>>,
    pub active: bool,
    /// Authorization requests only pushed first (RFC 9126); also on for every partner when
    /// the server requires it (`require_pushed_requests`).
    pub require_pushed_authorization_requests: bool,
    /// The registered public keys (`private_key_jwt`), or where they are published.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl PartnerView {
    fn of(client: &Client) -> PartnerView {
        let accreditation = client.accreditation();
        PartnerView {
            client_id: client.client_id.clone(),
            name: client.display_name.clone(),
            redirect_uris: client.redirect_uri_list(),
            scopes: client
                .allowed_scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            token_endpoint_auth_method: client
                .auth_methods
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string(),
            contacts: client.contact_list(),
            accreditation: accreditation.status.as_str().to_string(),
            accredited_from: accreditation.valid_from,
            accredited_until: accreditation.valid_until,
            active: client.is_active(),
            require_pushed_authorization_requests: client.require_par == 1,
            jwks: client
                .jwks
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: client.jwks_uri.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uri_list(),
            created_at: from_ts(client.created_at),
        }
    }
}

/// `POST /api/admin/resource-servers`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResourceServer {
    #[schema(example = "Schooldata-API")]
    pub name: String,
}

/// `POST /api/admin/management-clients`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewManagementClient {
    #[schema(example = "Beheer Het Baken")]
    pub name: String,
    /// `platform`, or `beheer:<BRIN>` for one school.
    #[schema(example = "beheer:56EF")]
    pub scope: String,
}

/// A client's credentials, shown once: only the argon2id hash of the secret is stored.
#[derive(Clone, Serialize, ToSchema)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A rotated secret: the new one, and until when the previous one still works.
#[derive(Clone, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub client_id: String,
    pub client_secret: String,
    pub previous_secret_valid_until: DateTime<Utc>,
}

/// What removing a partner did: deleted (never had grants) or deactivated.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerRemoval {
    pub client_id: String,
    /// `deleted` or `deactivated`.
    #[schema(example = "deactivated")]
    pub outcome: String,
}

/// Generate credentials, or (for the demo data, which publishes fixed ones) use given ones.
#[derive(Clone)]
pub enum Issue {
    Generate,
    Fixed {
        client_id: String,
        client_secret: Option<String>,
    },
}

impl Issue {
    fn client_id(&self, name: &str) -> String {
        match self {
            Issue::Generate => new_client_id(name),
            Issue::Fixed { client_id, .. } => client_id.clone(),
        }
    }

    fn secret(&self) -> Option<String> {
        match self {
            Issue::Generate => Some(random_token()),
            Issue::Fixed { client_secret, .. } => client_secret.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Schools.

pub async fn register_school(
    app: &App,
    actor: &Actor,
    input: NewSchool,
) -> Result<SchoolView, OnboardingError> {
    actor.require_platform()?;
    let brin = validate_brin("brin", &input.brin)?;
    let name = validate_name("name", &input.name)?;
    let mut tx = begin(&app.store).await?;
    if schools::get_school_in(&mut tx, &brin).await?.is_some() {
        return Err(OnboardingError::Conflict(format!(
            "school {brin} exists already"
        )));
    }
    schools::insert_school_in(&mut tx, &brin, &name, app.now()).await?;
    let change = Change::new(
        "school.register",
        format!("school:{brin}/registration"),
        json!({ "brin": brin, "name": name }),
    );
    commit_audited(app, tx, actor, &[change]).await?;
    Ok(SchoolView { brin, name })
}

pub async fn list_schools(app: &App, actor: &Actor) -> Result<Vec<SchoolView>, OnboardingError> {
    actor.require_platform()?;
    Ok(app
        .store
        .list_schools()
        .await?
        .into_iter()
        .map(|s| SchoolView {
            brin: s.brin,
            name: s.name,
        })
        .collect())
}

pub async fn update_school(
    app: &App,
    actor: &Actor,
    brin: &str,
    patch: SchoolPatch,
) -> Result<SchoolView, OnboardingError> {
    actor.require_platform()?;
    let name = patch
        .name
        .as_deref()
        .map(|n| validate_name("name", n))
        .transpose()?;
    let mut tx = begin(&app.store).await?;
    let Some(school) = schools::get_school_in(&mut tx, brin).await? else {
        return Err(OnboardingError::NotFound(format!("unknown school {brin}")));
    };
    let mut changes = Vec::new();
    let mut view = SchoolView {
        brin: school.brin.clone(),
        name: school.name.clone(),
    };
    if let Some(name) = name.filter(|n| *n != school.name) {
        schools::rename_school_in(&mut tx, brin, &name).await?;
        changes.push(Change::new(
            "school.rename",
            format!("school:{brin}/registration"),
            json!({ "from": school.name, "to": name }),
        ));
        view.name = name;
    }
    commit_audited(app, tx, actor, &changes).await?;
    Ok(view)
}

// ---------------------------------------------------------------------------------------
// Partners.

/// Register a partner. It starts *pending*: no authorization and no tokens until the
/// platform accredits it, and every school's link to it starts closed.
pub async fn register_partner(
    app: &App,
    actor: &Actor,
    input: NewPartner,
    issue: Issue,
) -> Result<Credentials, OnboardingError> {
    actor.require_platform()?;
    let name = validate_name("name", &input.name)?;
    let redirect_uris = validate_redirect_uris("redirect_uris", &input.redirect_uris)?;
    let scopes = validate_scopes("scopes", &input.scopes)?;
    let method = validate_auth_method(
        "token_endpoint_auth_method",
        &input.token_endpoint_auth_method,
    )?;
    let contacts = validate_contacts("contacts", &input.contacts)?;
    let jwks = input
        .jwks
        .as_ref()
        .map(|j| validate_jwks("jwks", j))
        .transpose()?;
    let jwks_uri = input
        .jwks_uri
        .as_deref()
        .map(|u| validate_jwks_uri("jwks_uri", u))
        .transpose()?;
    check_keys_fit(method, (jwks.as_deref(), jwks_uri.as_deref()))?;
    let pending = Accreditation {
        status: AccreditationStatus::Pending,
        valid_from: None,
        valid_until: None,
    };
    let record = ClientRecord {
        client_id: &issue.client_id(&name),
        display_name: &name,
        kind: "partner",
        redirect_uris: &redirect_uris,
        allowed_scopes: &scope_string(&scopes),
        auth_methods: method,
        contacts: &contacts,
    };
    register_client(
        app,
        actor,
        &record,
        issue.secret(),
        &pending,
        "partner.register",
        (jwks.as_deref(), jwks_uri.as_deref()),
    )
    .await
}

/// Register any kind of client in one audited transaction; returns its credentials.
async fn register_client(
    app: &App,
    actor: &Actor,
    record: &ClientRecord<'_>,
    secret: Option<String>,
    accreditation: &Accreditation,
    action: &str,
    keys: (Option<&str>, Option<&str>),
) -> Result<Credentials, OnboardingError> {
    let secret_hash = match &secret {
        Some(secret) => Some(hash_password(secret.clone()).await?),
        None => None,
    };
    let mut tx = begin(&app.store).await?;
    if clients::get_client_in(&mut tx, record.client_id)
        .await?
        .is_some()
    {
        return Err(OnboardingError::Conflict(format!(
            "client {} exists already",
            record.client_id
        )));
    }
    clients::insert_client_in(
        &mut tx,
        record,
        secret_hash.as_deref(),
        accreditation,
        app.now(),
    )
    .await?;
    if keys.0.is_some() || keys.1.is_some() {
        clients::set_client_keys_in(&mut tx, record.client_id, keys.0, keys.1).await?;
    }
    let change = Change::new(
        action,
        format!("{}:{}", target_kind(record.kind), record.client_id),
        json!({
            "name": record.display_name,
            "kind": record.kind,
            "redirect_uris": record.redirect_uris,
            "scopes": record.allowed_scopes,
            "token_endpoint_auth_method": record.auth_methods,
            "contacts": record.contacts,
        }),
    );
    commit_audited(app, tx, actor, &[change]).await?;
    Ok(Credentials {
        client_id: record.client_id.to_string(),
        client_secret: secret.unwrap_or_default(),
    })
}

fn target_kind(kind: &str) -> &str {
    match kind {
        "resource_server" => "resource-server",
        "management" => "management-client",
        "first_party" => "first-party",
        other => other,
    }
}

async fn partner_in(tx: &mut super::Tx, client_id: &str) -> Result<Client, OnboardingError> {
    match clients::get_client_in(tx, client_id).await? {
        Some(client) if client.kind == "partner" => Ok(client),
        _ => Err(OnboardingError::NotFound(format!(
            "unknown partner {client_id}"
        ))),
    }
}

pub async fn list_partners(app: &App, actor: &Actor) -> Result<Vec<PartnerView>, OnboardingError> {
    actor.require_platform()?;
    Ok(app
        .store
        .list_clients("partner")
        .await?
        .iter()
        .map(PartnerView::of)
        .collect())
}

pub async fn get_partner(
    app: &App,
    actor: &Actor,
    client_id: &str,
) -> Result<PartnerView, OnboardingError> {
    actor.require_platform()?;
    match app.store.get_client(client_id).await? {
        Some(client) if client.kind == "partner" => Ok(PartnerView::of(&client)),
        _ => Err(OnboardingError::NotFound(format!(
            "unknown partner {client_id}"
        ))),
    }
}

/// Change a partner's registration. Narrowing its scopes or redirect URIs applies at once
/// (the live policy reads the client on every call); `active: false` deactivates it.
pub async fn update_partner(
    app: &App,
    actor: &Actor,
    client_id: &str,
    patch: PartnerPatch,
) -> Result<PartnerView, OnboardingError> {
    actor.require_platform()?;
    let name = patch
        .name
        .as_deref()
        .map(|n| validate_name("name", n))
        .transpose()?;
    let redirect_uris = patch
        .redirect_uris
        .as_deref()
        .map(|u| validate_redirect_uris("redirect_uris", u))
        .transpose()?;
    let scopes = patch
        .scopes
        .as_deref()
        .map(|s| validate_scopes("scopes", s))
        .transpose()?;
    let method = patch
        .token_endpoint_auth_method
        .as_deref()
        .map(|m| validate_auth_method("token_endpoint_auth_method", m))
        .transpose()?;
    let contacts = patch
        .contacts
        .as_deref()
        .map(|c| validate_contacts("contacts", c))
        .transpose()?;
    let jwks = patch
        .jwks
        .as_ref()
        .map(|j| validate_jwks("jwks", j))
        .transpose()?;
    let post_logout = patch
        .post_logout_redirect_uris
        .as_deref()
        .map(|u| {
            if u.is_empty() {
                Ok(Vec::new())
            } else {
                validate_redirect_uris("post_logout_redirect_uris", u)
            }
        })
        .transpose()?;
    let jwks_uri = patch
        .jwks_uri
        .as_deref()
        .map(|u| validate_jwks_uri("jwks_uri", u))
        .transpose()?;

    let mut tx = begin(&app.store).await?;
    let before = partner_in(&mut tx, client_id).await?;
    let name = name.unwrap_or_else(|| before.display_name.clone());
    let redirect_uris = redirect_uris.unwrap_or_else(|| before.redirect_uri_list());
    let scopes = scopes
        .map(|s| scope_string(&s))
        .unwrap_or_else(|| before.allowed_scopes.clone());
    let method = method
        .map(str::to_string)
        .unwrap_or_else(|| before.auth_methods.clone());
    let contacts = contacts.unwrap_or_else(|| before.contact_list());
    // New keys replace the old ones, of either kind.
    let keys = match (jwks, jwks_uri) {
        (None, None) => (before.jwks.clone(), before.jwks_uri.clone()),
        (jwks, jwks_uri) => (jwks, jwks_uri),
    };
    check_keys_fit(&method, (keys.0.as_deref(), keys.1.as_deref()))?;
    let mut changes = Vec::new();
    if keys != (before.jwks.clone(), before.jwks_uri.clone()) {
        clients::set_client_keys_in(&mut tx, client_id, keys.0.as_deref(), keys.1.as_deref())
            .await?;
        changes.push(Change::new(
            "partner.keys",
            format!("partner:{client_id}"),
            json!({ "jwks": keys.0.is_some(), "jwks_uri": keys.1 }),
        ));
    }
    let registration_changed = name != before.display_name
        || redirect_uris != before.redirect_uri_list()
        || scopes != before.allowed_scopes
        || method != before.auth_methods
        || contacts != before.contact_list();
    if registration_changed {
        clients::update_client_in(
            &mut tx,
            &ClientRecord {
                client_id,
                display_name: &name,
                kind: "partner",
                redirect_uris: &redirect_uris,
                allowed_scopes: &scopes,
                auth_methods: &method,
                contacts: &contacts,
            },
        )
        .await?;
        changes.push(Change::new(
            "partner.update",
            format!("partner:{client_id}"),
            json!({
                "name": name, "redirect_uris": redirect_uris, "scopes": scopes,
                "token_endpoint_auth_method": method, "contacts": contacts,
            }),
        ));
    }
    // A partner on keys alone keeps no secret that could come back to life.
    if method == "private_key_jwt"
        && (before.secret_hash.is_some() || before.previous_secret_hash.is_some())
    {
        clients::clear_secrets_in(&mut tx, client_id).await?;
        changes.push(Change::new(
            "partner.secret_cleared",
            format!("partner:{client_id}"),
            json!({ "reason": "token_endpoint_auth_method is private_key_jwt" }),
        ));
    }
    if let Some(uris) = post_logout.filter(|u| *u != before.post_logout_redirect_uri_list()) {
        clients::set_post_logout_redirect_uris_in(&mut tx, client_id, &uris).await?;
        changes.push(Change::new(
            "partner.post_logout_redirect_uris",
            format!("partner:{client_id}"),
            json!({ "post_logout_redirect_uris": uris }),
        ));
    }
    if let Some(required) = patch
        .require_pushed_authorization_requests
        .filter(|r| *r != (before.require_par == 1))
    {
        clients::set_require_par_in(&mut tx, client_id, required).await?;
        changes.push(Change::new(
            "partner.require_par",
            format!("partner:{client_id}"),
            json!({ "require_pushed_authorization_requests": required }),
        ));
    }
    if let Some(active) = patch.active.filter(|a| *a != before.is_active()) {
        clients::set_client_active_in(&mut tx, client_id, active).await?;
        changes.push(Change::new(
            if active {
                "partner.reactivate"
            } else {
                "partner.deactivate"
            },
            format!("partner:{client_id}"),
            json!({ "active": active }),
        ));
    }
    let after = clients::get_client_in(&mut tx, client_id)
        .await?
        .ok_or_else(|| OnboardingError::NotFound(format!("unknown partner {client_id}")))?;
    commit_audited(app, tx, actor, &changes).await?;
    Ok(PartnerView::of(&after))
}

/// A new secret for a client. The old one keeps working for the configured grace period
/// (so the partner can roll it out without downtime), then never again.
pub async fn rotate_secret(
    app: &App,
    actor: &Actor,
    client_id: &str,
) -> Result<RotatedSecret, OnboardingError> {
    actor.require_platform()?;
    let secret = random_token();
    let hash = hash_password(secret.clone()).await?;
    let grace_until = app.now() + Duration::seconds(app.config.secret_rotation_grace_secs);
    let mut tx = begin(&app.store).await?;
    let client = match clients::get_client_in(&mut tx, client_id).await? {
        Some(c) if c.secret_hash.is_some() => c,
        Some(_) => {
            return Err(OnboardingError::Conflict(format!(
                "client {client_id} is public and has no secret"
            )))
        }
        None => {
            return Err(OnboardingError::NotFound(format!(
                "unknown client {client_id}"
            )))
        }
    };
    clients::rotate_secret_in(&mut tx, client_id, &hash, grace_until).await?;
    let change = Change::new(
        "client.rotate_secret",
        format!("{}:{client_id}", target_kind(&client.kind)),
        json!({ "previous_secret_valid_until": grace_until.to_rfc3339() }),
    );
    commit_audited(app, tx, actor, &[change]).await?;
    Ok(RotatedSecret {
        client_id: client_id.to_string(),
        client_secret: secret,
        previous_secret_valid_until: grace_until,
    })
}

/// Remove a partner: deleted when it never had a grant, otherwise deactivated (grants are
/// consent records that the audit trail and "Mijn apps" keep referring to).
pub async fn remove_partner(
    app: &App,
    actor: &Actor,
    client_id: &str,
) -> Result<PartnerRemoval, OnboardingError> {
    actor.require_platform()?;
    let mut tx = begin(&app.store).await?;
    let partner = partner_in(&mut tx, client_id).await?;
    let outcome = if clients::count_grants_in(&mut tx, client_id).await? > 0 {
        if partner.is_active() {
            clients::set_client_active_in(&mut tx, client_id, false).await?;
        }
        "deactivated"
    } else {
        clients::delete_client_in(&mut tx, client_id).await?;
        "deleted"
    };
    let changes = if outcome == "deactivated" && !partner.is_active() {
        Vec::new()
    } else {
        vec![Change::new(
            &format!(
                "partner.{}",
                if outcome == "deleted" {
                    "delete"
                } else {
                    "deactivate"
                }
            ),
            format!("partner:{client_id}"),
            json!({}),
        )]
    };
    commit_audited(app, tx, actor, &changes).await?;
    Ok(PartnerRemoval {
        client_id: client_id.to_string(),
        outcome: outcome.to_string(),
    })
}

/// `PUT /api/admin/partners/{client_id}/accreditation`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccreditationChange {
    /// `accredited` or `suspended`.
    #[schema(example = "accredited")]
    pub status: String,
    /// End of the accreditation period; kept as it was when left out.
    pub valid_until: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccreditationView {
    pub client_id: String,
    #[schema(example = "accredited")]
    pub status: String,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}

/// The platform accredits a partner (an agreement on security and data use) or suspends it.
/// Suspension takes effect at the partner's next call.
pub async fn set_accreditation(
    app: &App,
    actor: &Actor,
    client_id: &str,
    input: AccreditationChange,
) -> Result<AccreditationView, OnboardingError> {
    actor.require_platform()?;
    let status = match AccreditationStatus::parse(&input.status) {
        Some(s @ (AccreditationStatus::Accredited | AccreditationStatus::Suspended)) => s,
        _ => {
            return Err(OnboardingError::invalid(
                "status",
                "must be accredited or suspended",
            ))
        }
    };
    let reason = input
        .reason
        .as_deref()
        .map(|r| validate_name("reason", r))
        .transpose()?;
    let now = app.now();
    let mut tx = begin(&app.store).await?;
    let client = partner_in(&mut tx, client_id).await?;
    let current = client.accreditation();
    let accreditation = Accreditation {
        status,
        valid_from: current.valid_from.or(Some(now)),
        valid_until: input.valid_until.or(current.valid_until),
    };
    if let (Some(from), Some(until)) = (accreditation.valid_from, accreditation.valid_until) {
        if until <= from {
            return Err(OnboardingError::invalid(
                "valid_until",
                "must be after the start of the accreditation",
            ));
        }
    }
    let mut changes = Vec::new();
    if accreditation != current {
        clients::set_accreditation_in(&mut tx, client_id, &accreditation).await?;
        changes.push(
            Change::new(
                &format!("accreditation.{}", status.as_str()),
                format!("partner:{client_id}"),
                json!({
                    "status": status.as_str(),
                    "valid_until": accreditation.valid_until.map(|t| t.to_rfc3339()),
                }),
            )
            .because(reason.as_deref()),
        );
    }
    commit_audited(app, tx, actor, &changes).await?;
    Ok(AccreditationView {
        client_id: client_id.to_string(),
        status: status.as_str().to_string(),
        valid_from: accreditation.valid_from,
        valid_until: accreditation.valid_until,
    })
}

// ---------------------------------------------------------------------------------------
// Resource servers and management clients.

const SECRET_METHODS: &str = "client_secret_basic client_secret_post";

/// The platform's own clients are admitted without end date.
fn platform_accreditation() -> Accreditation {
    Accreditation {
        status: AccreditationStatus::Accredited,
        valid_from: None,
        valid_until: None,
    }
}

/// A resource server (the school-data API) may introspect every token (RFC 7662 §2.1).
pub async fn register_resource_server(
    app: &App,
    actor: &Actor,
    input: NewResourceServer,
    issue: Issue,
) -> Result<Credentials, OnboardingError> {
    actor.require_platform()?;
    let name = validate_name("name", &input.name)?;
    let record = ClientRecord {
        client_id: &issue.client_id(&name),
        display_name: &name,
        kind: "resource_server",
        redirect_uris: &[],
        allowed_scopes: "",
        auth_methods: SECRET_METHODS,
        contacts: &[],
    };
    register_client(
        app,
        actor,
        &record,
        issue.secret(),
        &platform_accreditation(),
        "resource_server.register",
        (None, None),
    )
    .await
}

/// A management client for the admin API: `platform`, or `beheer:<BRIN>` for one school.
pub async fn register_management_client(
    app: &App,
    actor: &Actor,
    input: NewManagementClient,
    issue: Issue,
) -> Result<Credentials, OnboardingError> {
    actor.require_platform()?;
    let name = validate_name("name", &input.name)?;
    let scope = if input.scope == "platform" {
        "platform".to_string()
    } else if let Some(brin) = input.scope.strip_prefix("beheer:") {
        let brin = validate_brin("scope", brin)?;
        if app.store.get_school(&brin).await?.is_none() {
            return Err(OnboardingError::invalid(
                "scope",
                format!("unknown school {brin}: register the school first"),
            ));
        }
        format!("beheer:{brin}")
    } else {
        return Err(OnboardingError::invalid(
            "scope",
            "must be platform or beheer:<BRIN>",
        ));
    };
    let record = ClientRecord {
        client_id: &issue.client_id(&name),
        display_name: &name,
        kind: "management",
        redirect_uris: &[],
        allowed_scopes: &scope,
        auth_methods: SECRET_METHODS,
        contacts: &[],
    };
    register_client(
        app,
        actor,
        &record,
        issue.secret(),
        &platform_accreditation(),
        "management_client.register",
        (None, None),
    )
    .await
}

/// The first start: a management client with scope `platform`, its secret shown once.
/// Refused when one exists, unless `force` (which adds another; existing secrets are never
/// shown, they exist only as hashes).
pub async fn bootstrap(app: &App, force: bool) -> Result<Credentials, OnboardingError> {
    if !force && app.store.has_platform_client().await? {
        return Err(OnboardingError::Conflict(
            "a platform management client exists already; use --force to add another".into(),
        ));
    }
    register_management_client(
        app,
        &Actor::console(),
        NewManagementClient {
            name: "Platformbeheer".into(),
            scope: "platform".into(),
        },
        Issue::Generate,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brin_codes() {
        assert_eq!(validate_brin("brin", "12ab").unwrap(), "12AB");
        assert_eq!(validate_brin("brin", "0912").unwrap(), "0912");
        for bad in ["", "1AB2", "AB12", "12A", "12ABC", "12-A", "１２AB"] {
            let err = validate_brin("brin", bad).unwrap_err();
            assert!(
                matches!(err, OnboardingError::Invalid { ref field, .. } if field == "brin"),
                "{bad}"
            );
        }
    }

    #[test]
    fn redirect_uris_are_strict() {
        for good in [
            "https://app.example/callback",
            "https://app.example/cb?x=1",
            "http://127.0.0.1:9000/callback",
            "http://[::1]:9000/callback",
            "http://localhost/callback",
        ] {
            assert_eq!(validate_redirect_uri("r", good).unwrap(), good);
        }
        for bad in [
            "/callback",
            "app.example/callback",
            "https://app.example/cb#frag",
            "https://*.app.example/cb",
            "https://app.example/*",
            "http://app.example/callback",
            "http://127.0.0.2/callback",
            "ftp://app.example/",
            "javascript:alert(1)",
            "https://user:pw@app.example/cb",
            "https://app.example/c b",
        ] {
            assert!(validate_redirect_uri("r", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_only_known_ones() {
        let ok =
            validate_scopes("scopes", &["naam".into(), "openid".into(), "naam".into()]).unwrap();
        assert_eq!(ok, vec![Scope::OpenId, Scope::Naam]);
        let err = validate_scopes("scopes", &["openid".into(), "email".into()]).unwrap_err();
        assert!(matches!(err, OnboardingError::Invalid { ref field, .. } if field == "scopes[1]"));
        assert!(validate_scopes("scopes", &[]).is_err());
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(validate_name("name", "  Slim  ").unwrap(), "Slim");
        assert!(validate_name("name", "   ").is_err());
        assert!(validate_name("name", &"x".repeat(201)).is_err());
        assert!(validate_name("name", &"é".repeat(200)).is_ok());
        assert!(validate_name("name", "a\u{0}b").is_err());
    }

    #[test]
    fn client_ids_are_readable_and_unique() {
        let a = new_client_id("Huiswerkinstituut Slim!");
        let b = new_client_id("Huiswerkinstituut Slim!");
        assert!(a.starts_with("huiswerkinstituut-slim-"), "{a}");
        assert_ne!(a, b);
        assert!(new_client_id("!!!").starts_with("client-"));
    }
}

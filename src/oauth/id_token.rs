//! Claims about the student, released per scope (data minimisation), and the ID token
//! (OIDC Core §2) that carries them.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::crypto::pairwise::pairwise_subject;
use crate::domain::scope::{Scope, ScopeSet};
use crate::storage::accounts::Account;
use crate::AppState;

/// `sub` and the scope-bound claims. `naam` releases the name and nothing more; a parent who
/// acted is named as actor (RFC 8693 §4.1 `act`), with their own pairwise identifier.
pub fn subject_claims(
    state: &AppState,
    client_id: &str,
    student: &Account,
    actor_id: Option<&str>,
    scopes: &ScopeSet,
) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert(
        "sub".into(),
        json!(pairwise_subject(
            &state.pairwise_secret,
            client_id,
            &student.id
        )),
    );
    if scopes.contains(Scope::Naam) {
        let name = student.name();
        claims.insert("name".into(), json!(name.full()));
        claims.insert("given_name".into(), json!(name.given_name));
        // OIDC Core §5.1 `family_name`: "de Vries", as people read it; the parts apart for
        // clients that sort or address letters the Dutch way.
        claims.insert("family_name".into(), json!(name.surname()));
        claims.insert("geslachtsnaam".into(), json!(name.family_name));
        if let Some(t) = name.tussenvoegsel.filter(|t| !t.is_empty()) {
            claims.insert("tussenvoegsel".into(), json!(t));
        }
    }
    if let Some(actor) = actor_id {
        claims.insert(
            "act".into(),
            json!({ "sub": pairwise_subject(&state.pairwise_secret, client_id, actor), "role": "parent" }),
        );
    }
    claims
}

pub struct IdTokenInput<'a> {
    pub client_id: &'a str,
    pub student: &'a Account,
    pub actor_id: Option<&'a str>,
    pub scopes: &'a ScopeSet,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub session_id: &'a str,
    pub access_token: &'a str,
    pub now: DateTime<Utc>,
}

pub fn issue(state: &AppState, input: IdTokenInput<'_>) -> anyhow::Result<String> {
    let key = state
        .signing_key()
        .ok_or_else(|| anyhow::anyhow!("no signing key loaded"))?;
    let mut claims = subject_claims(
        state,
        input.client_id,
        input.student,
        input.actor_id,
        input.scopes,
    );
    let exp = input.now + Duration::seconds(state.config.id_token_ttl_secs);
    claims.insert("iss".into(), json!(state.config.issuer));
    claims.insert("aud".into(), json!(input.client_id));
    claims.insert("azp".into(), json!(input.client_id));
    claims.insert("iat".into(), json!(input.now.timestamp()));
    claims.insert("exp".into(), json!(exp.timestamp()));
    claims.insert("auth_time".into(), json!(input.auth_time));
    // The school whose login was used, as the partner named it in `acr_values`.
    claims.insert(
        "acr".into(),
        json!(format!("tenant:{}", input.student.school_brin)),
    );
    claims.insert("sid".into(), json!(input.session_id));
    if let Some(nonce) = input.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    // OIDC Core §3.1.3.6: base64url of the left half of SHA-256(access token).
    claims.insert("at_hash".into(), json!(at_hash(input.access_token)));
    key.sign(claims, "JWT")
}

fn at_hash(access_token: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

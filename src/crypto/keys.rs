//! ID-token signing keys: RS256 key pairs generated on first start, stored in the database,
//! published in the JWKS with their `kid` (OIDC Core §10.1).

use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::alg::rsassa::RsassaJwsSigner;
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value};

/// A private key able to sign, with its public half as a JWK.
pub struct SigningKey {
    pub kid: String,
    signer: RsassaJwsSigner,
    public_jwk: Map<String, Value>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Generate a fresh 2048-bit RSA key; returns `(kid, private key PEM)`.
pub fn generate_rs256() -> anyhow::Result<(String, String)> {
    let pair = RS256.generate_key_pair(2048)?;
    let pem = String::from_utf8(pair.to_pem_private_key())?;
    let kid = format!("rs256-{}", &super::tokens::random_token()[..16]);
    Ok((kid, pem))
}

impl SigningKey {
    pub fn from_pem(kid: &str, pem: &str) -> anyhow::Result<Self> {
        let pair = RsaKeyPair::from_pem(pem.as_bytes())?;
        let mut jwk = pair.to_jwk_public_key();
        jwk.set_key_id(kid);
        jwk.set_key_use("sig");
        jwk.set_algorithm("RS256");
        let signer = RS256.signer_from_pem(pem.as_bytes())?;
        Ok(Self {
            kid: kid.to_string(),
            signer,
            public_jwk: jwk.as_ref().clone(),
        })
    }

    pub fn public_jwk(&self) -> &Map<String, Value> {
        &self.public_jwk
    }

    /// The claims of a JWT this key signed, or `None` (expiry is the caller's business: an
    /// expired ID token still names who it was for, as `id_token_hint` needs).
    /// Only a JWT whose header says `typ` (RFC 7515 §4.1.9) counts.
    pub fn verify(&self, jwt: &str, typ: &str) -> Option<JwtPayload> {
        let jwk = josekit::jwk::Jwk::from_map(self.public_jwk.clone()).ok()?;
        let verifier = RS256.verifier_from_jwk(&jwk).ok()?;
        let (payload, header) = jwt::decode_with_verifier(jwt, &verifier).ok()?;
        (header.token_type() == Some(typ)).then_some(payload)
    }

    /// Sign a JWT with `typ` and `kid` in the header (RFC 7515 §4.1.4).
    pub fn sign(&self, claims: Map<String, Value>, typ: &str) -> anyhow::Result<String> {
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&self.kid);
        let payload = JwtPayload::from_map(claims)?;
        Ok(jwt::encode_with_signer(&payload, &header, &self.signer)?)
    }
}

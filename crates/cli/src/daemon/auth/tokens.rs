//! Access tokens (JWT, HS256 only, signed with a key made on first start)
//! and refresh tokens (random, stored only as their SHA-256).

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The signing key's file in the state directory.
pub const JWT_KEY_FILE: &str = "jwt.key";
const ISSUER: &str = "palisade";
const ACCESS: &str = "access";

/// What an access token says. Role and tenant are not in it: they are read
/// from the store on every request, so a change applies at once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    pub iss: String,
    /// User name.
    pub sub: String,
    /// User id: a user deleted and made again under the same name is
    /// another user, and the old tokens do not work for it.
    pub uid: u64,
    /// The user's token epoch at issue; raised by a password change.
    pub ep: u32,
    /// Token id, for revocation at logout.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub typ: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not a valid palisade access token: {0}")]
    Invalid(String),
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// Loads the signing key from the state directory, making it on first
    /// start.
    pub fn load_or_create(state_dir: &Path) -> Result<TokenKeys, String> {
        let secret = super::secret_file::load_or_create(&state_dir.join(JWT_KEY_FILE), 32)?;
        Ok(TokenKeys::from_secret(&secret))
    }

    pub fn from_secret(secret: &[u8]) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A new access token for a user, valid `ttl_secs` from `now`.
    pub fn issue(
        &self,
        user: &str,
        uid: u64,
        epoch: u32,
        now: i64,
        ttl_secs: i64,
    ) -> Result<(String, Claims), String> {
        let claims = Claims {
            iss: ISSUER.into(),
            sub: user.into(),
            uid,
            ep: epoch,
            jti: random_token(16)?,
            iat: now,
            exp: now + ttl_secs,
            typ: ACCESS.into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())?;
        Ok((token, claims))
    }

    /// Checks signature, algorithm, issuer, type and expiry.
    pub fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })?;
        if data.claims.typ != ACCESS {
            return Err(TokenError::Invalid("not an access token".into()));
        }
        Ok(data.claims)
    }
}

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> Result<String, String> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// How a refresh token is stored: its SHA-256, so the database alone does
/// not hand out sessions.
pub fn refresh_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(&[7u8; 32])
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn issued_tokens_decode() {
        let (t, c) = keys().issue("alice", 1, 0, now(), 60).unwrap();
        assert_eq!(keys().decode(&t).unwrap(), c);
    }

    #[test]
    fn expired_other_key_and_alg_none_are_refused() {
        let (t, _) = keys().issue("alice", 1, 0, now() - 120, 60).unwrap();
        assert_eq!(keys().decode(&t), Err(TokenError::Expired));
        let (t, _) = TokenKeys::from_secret(&[8u8; 32])
            .issue("alice", 1, 0, now(), 60)
            .unwrap();
        assert!(matches!(keys().decode(&t), Err(TokenError::Invalid(_))));
        // alg: none, with the claims of a valid token and no signature.
        let (good, _) = keys().issue("alice", 1, 0, now(), 60).unwrap();
        let payload = good.split('.').nth(1).unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        for forged in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert!(
                matches!(keys().decode(&forged), Err(TokenError::Invalid(_))),
                "{forged} accepted"
            );
        }
        // HS512 with the right key is still refused: one algorithm only.
        let c = keys().decode(&good).unwrap();
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &c,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert!(keys().decode(&hs512).is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = random_token(32).unwrap();
        assert_ne!(a, random_token(32).unwrap());
        assert_eq!(refresh_hash(&a).len(), 64);
        assert_ne!(refresh_hash(&a), a);
    }
}

//! Password hashing: argon2id with the crate's default cost (19 MiB, two
//! passes), stored as a PHC string that carries its own parameters.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// True when `password` matches the PHC string `stored`. Only argon2id
/// hashes are accepted, whatever else the string claims.
pub fn verify(stored: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the time of one verification, so that a login for a name without
/// a user takes as long as one with a wrong password.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("palisade-dummy-password").unwrap_or_default());
    let _ = verify(stored, password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let h = hash("Correct-horse-42").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify(&h, "Correct-horse-42"));
        assert!(!verify(&h, "correct-horse-42"));
        assert!(!verify("not a hash", "x"));
        // Same password, different salt.
        assert_ne!(h, hash("Correct-horse-42").unwrap());
        // Another algorithm in the string is refused.
        let i = h.replacen("argon2id", "argon2i", 1);
        assert!(!verify(&i, "Correct-horse-42"));
    }
}

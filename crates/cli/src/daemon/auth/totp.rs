//! The optional second factor: RFC 6238 time-based one-time codes (SHA-1,
//! six digits, 30-second steps, one step of clock skew either way), the
//! parameters every authenticator app understands.

use totp_rs::{Algorithm, Secret, TOTP};

fn totp(secret_b32: &str) -> Result<TOTP, String> {
    let bytes = Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .map_err(|e| format!("malformed TOTP secret: {e:?}"))?;
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).map_err(|e| e.to_string())
}

/// A new random secret (160 bits), base32.
pub fn new_secret() -> Result<String, String> {
    let mut b = [0u8; 20];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness: {e}"))?;
    Ok(Secret::Raw(b.to_vec()).to_encoded().to_string())
}

/// True when `code` is valid for `secret_b32` at Unix time `now`.
pub fn check(secret_b32: &str, code: &str, now: u64) -> bool {
    code.len() == 6
        && code.bytes().all(|b| b.is_ascii_digit())
        && totp(secret_b32).is_ok_and(|t| t.check(code, now))
}

/// The code for `now` (for tests and for enrolment checks).
pub fn code_at(secret_b32: &str, now: u64) -> Result<String, String> {
    Ok(totp(secret_b32)?.generate(now))
}

/// The `otpauth://` URI an authenticator app imports.
pub fn otpauth_uri(user: &str, secret_b32: &str) -> String {
    format!(
        "otpauth://totp/palisade:{user}?secret={secret_b32}&issuer=palisade&algorithm=SHA1&digits=6&period=30"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_check_within_one_step() {
        let s = new_secret().unwrap();
        let now = 1_800_000_000;
        let code = code_at(&s, now).unwrap();
        assert!(check(&s, &code, now));
        assert!(check(&s, &code, now + 30));
        assert!(!check(&s, &code, now + 90));
        assert!(!check(&s, "12345", now));
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59
        // gives 94287082; the last six digits are the 6-digit code.
        let s = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        assert_eq!(code_at(&s, 59).unwrap(), "287082");
    }
}

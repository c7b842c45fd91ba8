//! Authentication: password hashes, tokens, second factor, and the roles
//! that decide what an authenticated user may do.

pub mod password;
pub mod roles;
pub mod secret_file;
pub mod tokens;
pub mod totp;

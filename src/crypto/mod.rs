//! Cryptographic building blocks: random tokens and their hashes, password hashing,
//! pairwise subject identifiers and the ID-token signing keys.

pub mod keys;
pub mod pairwise;
pub mod password;
pub mod sealing;
pub mod tokens;
pub mod totp;

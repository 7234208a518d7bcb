//! Pure types and rules of the domain, without I/O: scopes, accounts and ages, partners and
//! their accreditation, and the decisions of who may consent to what.

pub mod account;
pub mod partner;
pub mod policy;
pub mod scope;

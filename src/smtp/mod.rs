//! SMTP itself, apart from any socket: the wire formats ([`codec`]) and the SASL encodings
//! ([`auth`]).

pub mod auth;
pub mod codec;
pub mod rules;

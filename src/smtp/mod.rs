//! SMTP itself, apart from any socket: the wire formats ([`codec`]), the SASL encodings
//! ([`auth`]), the DSN parameters ([`Dsn`]) and the protocol's decisions ([`rules`]).

pub mod auth;
pub mod codec;
mod dsn;
pub mod rules;

pub use dsn::Dsn;

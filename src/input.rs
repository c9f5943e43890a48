//! The input stage: the message (a saved file, stdin, or a generated test message) and its
//! envelope, from [`InputConfig`]. Everything here is checked before any connection; a problem is
//! bad input ([`Error`], exit 3).

use crate::config::InputConfig;
use crate::error::Error;
use crate::generate;
use crate::message::{self, Envelope, Message};
use std::path::PathBuf;

/// Loads (or generates) the message and works out the envelope. `via` names the route, for the
/// generated message's body.
pub fn load(input: &InputConfig, via: &str) -> Result<(Message, Envelope), Error> {
    let message = match &input.eml {
        Some(path) if path.as_os_str() == "-" => generate::stdin_message(input.max_size)?,
        Some(path) => message::load(path, input.max_size)?,
        None => generated(input, via)?,
    };
    let envelope = Envelope::resolve(&message, input.from.as_deref(), &input.to)?;
    Ok((message, envelope))
}

/// The generated test message: the envelope from --from and --to (both required), shaped by
/// --subject, --body, --body-file and --header.
fn generated(input: &InputConfig, via: &str) -> Result<Message, Error> {
    let from = input.from.as_deref().ok_or(Error::GeneratedNoSender)?;
    if input.to.is_empty() {
        return Err(Error::GeneratedNoRecipients);
    }
    let path = PathBuf::from(generate::GENERATED_PATH);
    let empty = Message::empty(path.clone());
    let envelope = Envelope::resolve(&empty, Some(from), &input.to)?;
    let body = match (&input.body, &input.body_file) {
        (Some(text), _) => Some(text.clone().into_bytes()),
        (None, Some(file)) => Some(generate::read_body_file(file, input.max_size)?),
        (None, None) => None,
    };
    let shape = generate::Shape {
        subject: input.subject.clone(),
        body,
        headers: input.headers.clone(),
    };
    let raw = generate::message(
        &envelope,
        &shape,
        via,
        &crate::host::this_host(),
        std::time::SystemTime::now(),
        crate::plan::random_seed(),
    )?;
    message::from_bytes(&path, raw)
}

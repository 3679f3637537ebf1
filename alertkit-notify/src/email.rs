//! [`EmailNotifier`]: multipart (text + HTML) email over pooled SMTP (lettre).
//!
//! The server comes as a URL:
//!
//! | URL | transport |
//! |---|---|
//! | `smtps://user:pass@host:465` | implicit TLS |
//! | `smtp://user:pass@host:587?tls=required` | STARTTLS, required |
//! | `smtp://127.0.0.1:2525` | plain: only to a loopback host |
//!
//! Each message's `Message-ID` is derived from the delivery id
//! (`<{delivery id}@alertkit>`), so a resend after a crash carries the same
//! id and mail systems and people can recognise it. SMTP 4xx answers and
//! connection failures are retried; 5xx answers (bad address, refused) are
//! permanent.

use alertkit_core::{Channel, Error, Notification, Notifier, Result};
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::template::Template;

/// Sends each notification as an email; see the [module docs](self).
#[derive(Clone)]
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    template: Template,
}

impl std::fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("from", &self.from.to_string())
            .field("server", &"<redacted>")
            .finish()
    }
}

/// The host of an SMTP URL (after any `user:pass@`, before `:port`, `/`, `?`).
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let hostport = &rest[..end];
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        hostport.split(':').next()?
    };
    Some(host)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl EmailNotifier {
    /// A notifier sending through the SMTP server at `url` (see the module
    /// docs) from `from` (`"Alerts <alerts@example.com>"` or a bare
    /// address). [`Error::Invalid`] names what is wrong: a bad URL or
    /// address, or plain SMTP to a host that is not loopback. Must be called
    /// inside a Tokio runtime (the connection pool runs a task there).
    pub fn from_url(url: &str, from: &str) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::invalid(
                "EmailNotifier must be created inside a Tokio runtime",
            ));
        }
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        let host = host_of(url).ok_or_else(|| Error::invalid("SMTP URL has no host"))?;
        let plain = scheme == "smtp" && !url.contains("tls=");
        if plain && !is_loopback(host) {
            return Err(Error::invalid(format!(
                "plain SMTP to {host} would send passwords and mail unencrypted; \
                 use smtps:// or smtp://…?tls=required (plain is only for loopback)"
            )));
        }
        if scheme != "smtp" && scheme != "smtps" {
            return Err(Error::invalid(format!(
                "SMTP URL scheme `{scheme}` is not smtp or smtps"
            )));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| Error::invalid(format!("SMTP URL: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(15)))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| Error::invalid(format!("sender address `{from}`: {e}")))?;
        Ok(EmailNotifier {
            transport,
            from,
            template: Template::default(),
        })
    }

    /// The template for subject and bodies.
    pub fn template(mut self, template: Template) -> Self {
        self.template = template;
        self
    }

    /// The message for one notification.
    pub fn message(&self, n: &Notification) -> Result<Message> {
        let to = n.recipient.email.as_deref().ok_or_else(|| {
            Error::invalid(format!("{} has no email address", n.recipient.user_id))
        })?;
        // A team route's list arrives as `a@x, b@y`.
        let mut builder = Message::builder().from(self.from.clone());
        for addr in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let mailbox: Mailbox = addr
                .parse()
                .map_err(|e| Error::invalid(format!("email address `{addr}`: {e}")))?;
            builder = builder.to(mailbox);
        }
        builder
            .subject(self.template.subject_of(n))
            .message_id(Some(format!("<{}@alertkit>", n.id)))
            .multipart(MultiPart::alternative_plain_html(
                self.template.text_of(n),
                self.template.html_of(n),
            ))
            .map_err(|e| Error::invalid(format!("email: {e}")))
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        let message = self.message(n)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Error::invalid(format!("SMTP refused: {e}"))),
            Err(e) if e.is_timeout() => Err(Error::Timeout(format!("SMTP: {e}"))),
            Err(e) => Err(Error::Unavailable(format!("SMTP: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_runtime_is_an_error_not_a_panic() {
        assert!(EmailNotifier::from_url("smtp://127.0.0.1:2525", "a@b.test").is_err());
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert_eq!(host_of("smtp://u:p@127.0.0.1:2525"), Some("127.0.0.1"));
        assert_eq!(
            host_of("smtps://mail.example.com"),
            Some("mail.example.com")
        );
        assert_eq!(host_of("smtp://[::1]:25?x"), Some("::1"));
        assert!(EmailNotifier::from_url("smtp://127.0.0.1:2525", "a@b.test").is_ok());
        assert!(EmailNotifier::from_url("smtp://localhost:2525", "a@b.test").is_ok());
        let plain = EmailNotifier::from_url("smtp://u:p@mail.example.com:25", "a@b.test");
        assert!(plain.unwrap_err().to_string().contains("unencrypted"));
        assert!(
            EmailNotifier::from_url("smtp://mail.example.com:587?tls=required", "a@b.test").is_ok()
        );
        assert!(EmailNotifier::from_url("smtps://mail.example.com", "a@b.test").is_ok());
        assert!(EmailNotifier::from_url("http://mail.example.com", "a@b.test").is_err());
        assert!(EmailNotifier::from_url("smtp://127.0.0.1:2525", "not an address").is_err());
    }
}

//! The HTTPS polling task: `GET /devices/{id}/messages/devicebound` until the queue answers
//! 204, then again after the poll interval; settle each message by its lock token (the ETag)
//! with `DELETE` (complete), `DELETE …?reject` or `POST …/abandon`.
//!
//! There is no connection to lose: a message's lock lives at the hub for the hub's lock
//! timeout (60 s by default; c2d sends no `iothub-messagelocktimeout`), whatever happens to
//! the TCP connection under the requests, and a settlement after it ended is answered 412
//! (`MessageLockLost`).

use std::collections::HashMap;
use std::time::SystemTime;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tokio::time::Instant;

use super::{Command, Delivered, Link, Settlement};
use crate::error::{Error, ErrorKind, Result};
use crate::message::{Ack, Message, MessageId};

/// The api-version the Node device SDK sends over HTTPS (the newest one devices use).
const API_VERSION: &str = "2021-04-12";

/// The requests of one device, and the token they carry.
struct Poller {
    http: reqwest::Client,
    /// `https://host:port/devices/{id}/messages/devicebound`
    base: String,
    /// `/devices/{id}/messages/devicebound`, sent as `iothub-to` as the SDKs do.
    to: String,
    token: Option<(String, SystemTime)>,
}

impl Poller {
    /// The `Authorization` header: the current SAS token, renewed at 80 % of its life; none
    /// for an X.509 device (its certificate, in the TLS handshake, is its credential).
    fn authorization(&mut self, link: &Link) -> Result<Option<String>> {
        if let Some((token, renew_at)) = &self.token {
            if SystemTime::now() < *renew_at || link.config.fixed_token.is_some() {
                return Ok(Some(token.clone()));
            }
        }
        let Some((token, expiry)) = link.config.token()? else {
            return Ok(None);
        };
        self.token = Some((token.clone(), link.config.renew_at(expiry)));
        Ok(Some(token))
    }

    /// A request with the device's credential.
    fn request(
        &mut self,
        link: &Link,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder> {
        let req = self.http.request(method, url);
        Ok(match self.authorization(link)? {
            Some(token) => req.header("Authorization", token),
            None => req,
        })
    }

    /// One receive: the oldest message, now locked for this device, or `None` (204).
    async fn receive(&mut self, link: &Link) -> Result<Option<(Message, Delivery)>> {
        let url = format!("{}?api-version={API_VERSION}", self.base);
        let resp = self
            .request(link, reqwest::Method::GET, &url)?
            .header("iothub-to", &self.to)
            .send()
            .await
            .map_err(|e| crate::http::request_error(&url, e))?;
        match resp.status() {
            StatusCode::NO_CONTENT => Ok(None),
            StatusCode::OK => {
                let headers = resp.headers().clone();
                let body = resp.bytes().await.map_err(|e| {
                    Error::new(ErrorKind::Unavailable, format!("reading the message: {e}"))
                })?;
                to_message(&headers, body.to_vec()).map(Some)
            }
            _ => Err(crate::http::status_error(resp).await),
        }
    }

    /// Completes, rejects or abandons the message locked with `lock_token`.
    async fn settle(&mut self, link: &Link, lock_token: &str, how: Settlement) -> Result<()> {
        let path = format!("{}/{}", self.base, crate::sas::url_encode(lock_token));
        let (method, url) = match how {
            Settlement::Complete => (
                reqwest::Method::DELETE,
                format!("{path}?api-version={API_VERSION}"),
            ),
            Settlement::Reject => (
                reqwest::Method::DELETE,
                format!("{path}?api-version={API_VERSION}&reject"),
            ),
            Settlement::Abandon => (
                reqwest::Method::POST,
                format!("{path}/abandon?api-version={API_VERSION}"),
            ),
        };
        let resp = self
            .request(link, method, &url)?
            .header("If-Match", format!("\"{lock_token}\""))
            .header("Content-Length", "0")
            .send()
            .await
            .map_err(|e| crate::http::request_error(&url, e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(crate::http::status_error(resp).await)
        }
    }
}

/// What the hub says about one delivery, beside the message.
#[derive(Debug)]
pub(crate) struct Delivery {
    lock_token: String,
    delivery_count: u32,
    enqueued_time: Option<SystemTime>,
    sequence_number: Option<u64>,
}

/// The message of a 200 answer: its body, and its properties from IoT Hub's headers
/// (`iothub-messageid`, …, `iothub-app-{name}`; HTTP header names are not case-sensitive, so
/// application property names arrive in lower case, as from IoT Hub).
pub(crate) fn to_message(headers: &HeaderMap, body: Vec<u8>) -> Result<(Message, Delivery)> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let time = |name: &str| text(name).and_then(|t| crate::timestamp::parse_utc(&t).ok());
    let lock_token = text("etag")
        .map(|t| t.trim().trim_matches('"').to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                "the hub answered a receive without an ETag (the lock token)",
            )
        })?;
    let mut message = Message::new(body);
    message.message_id = text("iothub-messageid").map(MessageId::String);
    message.correlation_id = text("iothub-correlationid").map(MessageId::String);
    message.user_id = text("iothub-userid").map(String::into_bytes);
    message.to = text("iothub-to");
    message.expiry_time = time("iothub-expiry");
    message.ack = text("iothub-ack").and_then(|a| a.parse::<Ack>().ok());
    message.content_type = text("iothub-contenttype").or_else(|| text("contenttype"));
    message.content_encoding = text("iothub-contentencoding").or_else(|| text("contentencoding"));
    for (name, value) in headers {
        if let (Some(key), Ok(value)) = (name.as_str().strip_prefix("iothub-app-"), value.to_str())
        {
            message
                .properties
                .push((key.to_string(), value.to_string()));
        }
    }
    let delivery = Delivery {
        lock_token,
        delivery_count: text("iothub-deliverycount")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0),
        enqueued_time: time("iothub-enqueuedtime"),
        sequence_number: text("iothub-sequencenumber").and_then(|n| n.trim().parse().ok()),
    };
    Ok((message, delivery))
}

pub(super) async fn run(mut link: Link) {
    let c = &link.config;
    let http = match crate::http::client(
        &link.tls,
        c.options.connection.timeout,
        c.options.connection.proxy.as_ref(),
    ) {
        Ok(h) => h,
        Err(e) => {
            link.failed(u32::MAX, e);
            return;
        }
    };
    let to = format!(
        "/devices/{}/messages/devicebound",
        crate::sas::url_encode(&c.device_id)
    );
    let mut poller = Poller {
        http,
        base: format!("https://{}:{}{to}", c.connect_host, c.port_or_default()),
        to,
        token: None,
    };
    // received and not yet settled: id → lock token
    let mut held: HashMap<u64, String> = HashMap::new();
    let mut next_id = 0u64;
    let mut attempt = 0u32;
    let mut next_poll = Instant::now();
    loop {
        let room = held.len() < usize::from(link.config.options.in_flight);
        tokio::select! {
            _ = tokio::time::sleep_until(next_poll), if room => {
                match poller.receive(&link).await {
                    Ok(Some((message, d))) => {
                        attempt = 0;
                        link.connected();
                        next_id += 1;
                        held.insert(next_id, d.lock_token.clone());
                        let delivered = Delivered {
                            message,
                            delivery_count: d.delivery_count,
                            enqueued_time: d.enqueued_time,
                            sequence_number: d.sequence_number,
                            lock_token: Some(d.lock_token),
                        };
                        if !link.hand_over(0, next_id, delivered) {
                            return; // the client is gone
                        }
                        // there may be more: ask again at once (the queue is drained)
                        next_poll = Instant::now();
                    }
                    Ok(None) => {
                        attempt = 0;
                        link.connected();
                        next_poll = Instant::now() + link.config.options.poll_interval;
                    }
                    Err(e) => {
                        attempt += 1;
                        match link.failed(attempt, e) {
                            Some(delay) => next_poll = Instant::now() + delay,
                            None => return,
                        }
                    }
                }
            }
            command = link.commands.recv() => match command {
                Some(Command::Settle { id, how, reply, .. }) => {
                    let result = match held.get(&id).cloned() {
                        Some(token) => {
                            // settled, refused, or not answered: no longer held either way
                            // (the settle consumed the application's message, so nothing can
                            // settle it again; unsettled, its lock ends at the hub and it
                            // comes again)
                            held.remove(&id);
                            poller.settle(&link, &token, how).await
                        }
                        None => Err(Error::new(
                            ErrorKind::MessageLockLost,
                            "the message is no longer held by this client",
                        )),
                    };
                    super::answer(reply, result);
                }
                Some(Command::GiveUp { id, .. }) => {
                    // it stays locked at the hub and comes back when its lock ends
                    held.remove(&id);
                }
                Some(Command::Close { done }) => {
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_reads_iot_hubs_headers() {
        let mut h = HeaderMap::new();
        let mut set = |k: &'static str, v: &str| {
            h.insert(k, v.parse().unwrap());
        };
        set("etag", "\"5b3b4a54-6c47-4c2a-9bd2-3cd4a1a7c1f0\"");
        set("iothub-messageid", "m-1");
        set("iothub-correlationid", "c-1");
        set("iothub-deliverycount", "2");
        set("iothub-sequencenumber", "17");
        set("iothub-enqueuedtime", "2026-12-02T10:00:00.0000000Z");
        set("iothub-expiry", "2026-12-02T11:00:00.0000000Z");
        set("iothub-ack", "full");
        set("contenttype", "application/json");
        set("iothub-app-colour", "blue");
        let (m, d) = to_message(&h, b"hi".to_vec()).unwrap();
        assert_eq!(d.lock_token, "5b3b4a54-6c47-4c2a-9bd2-3cd4a1a7c1f0");
        assert_eq!(d.delivery_count, 2);
        assert_eq!(d.sequence_number, Some(17));
        assert!(d.enqueued_time.is_some());
        assert_eq!(m.body, b"hi");
        assert_eq!(m.message_id, Some(MessageId::String("m-1".into())));
        assert_eq!(m.correlation_id, Some(MessageId::String("c-1".into())));
        assert_eq!(m.ack, Some(Ack::Full));
        assert_eq!(m.content_type.as_deref(), Some("application/json"));
        assert_eq!(m.get_property("colour"), Some("blue"));
        assert!(m.expiry_time.is_some());
    }

    #[test]
    fn a_delivery_without_a_lock_token_is_a_protocol_error() {
        let err = to_message(&HeaderMap::new(), vec![]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
    }
}

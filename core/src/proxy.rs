//! HTTP proxies: the WebSocket and HTTPS transports reach the hub through an HTTP proxy's
//! `CONNECT` tunnel (optionally with basic authentication), as the official SDKs do. The
//! environment (`HTTPS_PROXY`) is read only when asked ([`Proxy::from_env`]).

#[cfg(feature = "amqp")]
use std::time::Duration;

#[cfg(feature = "amqp")]
use tokio::net::TcpStream;

#[cfg(feature = "amqp")]
use crate::error::ErrorKind;
use crate::error::{Error, Result};

/// An HTTP proxy that tunnels connections to the hub with `CONNECT`.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Proxy {
    /// The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl std::fmt::Display for Proxy {
    /// `http://host:port` (without the credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

impl Proxy {
    /// A proxy at `host:port`, without authentication.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Proxy {
            host: host.into(),
            port,
            credentials: None,
        }
    }

    /// Authenticates to the proxy with basic authentication.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Parses `http://[user:password@]host[:port]` (the scheme may be left out; the port is
    /// 80 by default; the user and password are percent-decoded, as in `HTTPS_PROXY`).
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid_argument(format!("proxy '{url}': {why}"));
        let rest = match url.trim().split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "the scheme must be http (an HTTP proxy), not {scheme}"
                )))
            }
            None => url.trim(),
        };
        let rest = rest.trim_end_matches('/');
        let (credentials, authority) = match rest.rsplit_once('@') {
            Some((userinfo, authority)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |s: &str| {
                    crate::sas::url_decode(s).map_err(|_| bad("the credentials are not valid"))
                };
                (Some((decode(user)?, decode(password)?)), authority)
            }
            None => (None, rest),
        };
        if authority.contains('/') {
            return Err(bad("a proxy URL has no path"));
        }
        let port_of = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            // [::1]:3128
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("no ']'"))?;
            match after.strip_prefix(':') {
                Some(p) => (host, port_of(p)?),
                None if after.is_empty() => (host, 80),
                None => return Err(bad("text after the address")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, port_of(p)?),
                None => (authority, 80),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Proxy {
            host: host.to_string(),
            port,
            credentials,
        })
    }

    /// The proxy `HTTPS_PROXY` (or `https_proxy`) names, if any: for applications that opt
    /// in to the environment's proxy. `NO_PROXY` is not consulted.
    pub fn from_env() -> Result<Option<Self>> {
        ["HTTPS_PROXY", "https_proxy"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            .map(|url| Proxy::parse(&url))
            .transpose()
    }

    /// The proxy's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Opens a TCP connection to the proxy and a `CONNECT` tunnel through it to `host:port`.
    #[cfg(feature = "amqp")]
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<TcpStream> {
        let tunnel = async {
            let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| {
                    crate::amqp::session::unavailable(&format!("connecting to the proxy {self}"), e)
                })?;
            let _ = tcp.set_nodelay(true);
            let result = match &self.credentials {
                Some((user, password)) => {
                    async_http_proxy::http_connect_tokio_with_basic_auth(
                        &mut tcp, host, port, user, password,
                    )
                    .await
                }
                None => async_http_proxy::http_connect_tokio(&mut tcp, host, port).await,
            };
            result.map_err(|e| self.refused(host, port, e))?;
            Ok(tcp)
        };
        tokio::time::timeout(timeout, tunnel).await.map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "the proxy {self} did not open a tunnel to {host}:{port} within {timeout:?}"
                ),
            )
        })?
    }

    #[cfg(feature = "amqp")]
    fn refused(&self, host: &str, port: u16, e: async_http_proxy::HttpError) -> Error {
        let text = e.to_string();
        // 407: the proxy wants (other) credentials; retrying will not change them
        let kind = if text.contains("407") {
            ErrorKind::Unauthorized
        } else {
            ErrorKind::Unavailable
        };
        Error::new(
            kind,
            format!("the proxy {self} refused a tunnel to {host}:{port}: {text}"),
        )
    }

    /// The proxy for reqwest.
    #[cfg(feature = "https")]
    pub(crate) fn for_reqwest(&self) -> Result<reqwest::Proxy> {
        let proxy = reqwest::Proxy::all(self.to_string())
            .map_err(|e| Error::invalid_argument(format!("proxy {self}: {e}")))?;
        Ok(match &self.credentials {
            Some((user, password)) => proxy.basic_auth(user, password),
            None => proxy,
        })
    }

    /// The proxy for rumqttc.
    #[cfg(feature = "mqtt")]
    pub(crate) fn for_mqtt(&self) -> rumqttc::Proxy {
        rumqttc::Proxy {
            ty: rumqttc::ProxyType::Http,
            auth: match &self.credentials {
                Some((username, password)) => rumqttc::ProxyAuth::Basic {
                    username: username.clone(),
                    password: password.clone(),
                },
                None => rumqttc::ProxyAuth::None,
            },
            addr: self.host.clone(),
            port: self.port,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_as_https_proxy_writes_them() {
        let p = Proxy::parse("http://user:p%40ss@proxy.example:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.example", 3128));
        assert_eq!(
            p.credentials,
            Some(("user".to_string(), "p@ss".to_string()))
        );
        assert_eq!(p.to_string(), "http://proxy.example:3128");
        assert!(!format!("{p:?}").contains("p@ss"));
        let bare = Proxy::parse("127.0.0.1:8888").unwrap();
        assert_eq!(
            (bare.host(), bare.port(), bare.credentials.clone()),
            ("127.0.0.1", 8888, None)
        );
        assert_eq!(Proxy::parse("http://proxy").unwrap().port(), 80);
        assert_eq!(Proxy::parse("http://[::1]:3128").unwrap().host(), "::1");
        for bad in [
            "socks5://h:1",
            "http://h:0",
            "http://h:port",
            "http://:80",
            "http://h:1/path",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }
}

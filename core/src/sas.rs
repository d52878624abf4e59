//! Shared access signature (SAS) tokens, as IoT Hub makes and checks them.
//!
//! `SharedAccessSignature sr={resource}&sig={signature}&se={expiry}[&skn={policy}]`, where the
//! signature is base64(HMAC-SHA256(base64-decoded key, `sr` **as sent** + `"\n"` + `se`)).
//! Checking over the raw `sr` is what lets every SDK's encoding (upper- or lowercase hex, or none
//! at all) verify against the same key.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;

use crate::error::{Error, ErrorKind, Result};

/// Everything but RFC 3986's unreserved characters is escaped (`NON_ALPHANUMERIC` would also
/// escape `-._~`, which Python's `quote` and Node's `encodeURIComponent` leave alone).
pub const URL_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The clock skew a hub allows past a token's expiry, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

const PREFIX: &str = "SharedAccessSignature ";

type HmacSha256 = Hmac<Sha256>;

/// Percent-encodes `s` with uppercase hex, leaving only unreserved characters.
pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, URL_ENCODE_SET).to_string()
}

/// Percent-decodes `s` (a `+` stays a `+`).
pub fn url_decode(s: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::invalid_argument(format!("'{s}' does not decode to UTF-8")))
}

/// Computes the base64 signature of `sr` (as it will be sent) and `se` with a base64 key.
pub fn sign(key_base64: &str, raw_sr: &str, raw_se: &str) -> Result<String> {
    let mac = mac_of(key_base64, raw_sr, raw_se)?;
    Ok(BASE64.encode(mac.finalize().into_bytes()))
}

fn mac_of(key_base64: &str, raw_sr: &str, raw_se: &str) -> Result<HmacSha256> {
    let key = BASE64
        .decode(key_base64.trim())
        .map_err(|_| Error::invalid_argument("the shared access key is not valid base64"))?;
    let mut mac = HmacSha256::new_from_slice(&key)
        .map_err(|_| Error::invalid_argument("the shared access key is empty"))?;
    mac.update(raw_sr.as_bytes());
    mac.update(b"\n");
    mac.update(raw_se.as_bytes());
    Ok(mac)
}

/// Makes a token for `resource` (unencoded, such as `myhub.azure-devices.net/devices/dev1`),
/// valid until `expiry` (Unix seconds). `key_name` is the policy name for policy keys.
pub fn generate_token(
    resource: &str,
    key_base64: &str,
    key_name: Option<&str>,
    expiry: u64,
) -> Result<String> {
    let sr = url_encode(resource);
    let se = expiry.to_string();
    let sig = sign(key_base64, &sr, &se)?;
    let mut token = format!("{PREFIX}sr={sr}&sig={}&se={se}", url_encode(&sig));
    if let Some(name) = key_name {
        token.push_str("&skn=");
        token.push_str(&url_encode(name));
    }
    Ok(token)
}

/// A parsed token. `sr` is kept exactly as sent, because that is what was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasToken {
    raw_sr: String,
    raw_se: String,
    signature: Vec<u8>,
    expiry: u64,
    key_name: Option<String>,
}

impl SasToken {
    /// Parses a `SharedAccessSignature …` string; the fields may come in any order.
    pub fn parse(token: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::Unauthorized,
                format!("malformed SAS token: {why}"),
            )
        };
        let fields = token
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad("it must start with 'SharedAccessSignature '"))?;
        let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
        for field in fields.split('&') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| bad("a field is not of the form key=value"))?;
            let slot = match k {
                "sr" => &mut sr,
                "sig" => &mut sig,
                "se" => &mut se,
                "skn" => &mut skn,
                _ => continue, // unknown fields are not signed and are ignored, as IoT Hub does
            };
            if slot.replace(v).is_some() {
                return Err(bad(&format!("field '{k}' appears twice")));
            }
        }
        let raw_sr = sr.ok_or_else(|| bad("sr is missing"))?.to_string();
        let raw_se = se.ok_or_else(|| bad("se is missing"))?.to_string();
        let sig = url_decode(sig.ok_or_else(|| bad("sig is missing"))?)
            .map_err(|_| bad("sig is not valid percent-encoding"))?;
        let signature = BASE64
            .decode(sig.as_bytes())
            .map_err(|_| bad("sig is not base64"))?;
        let expiry = url_decode(&raw_se)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("se is not a number of seconds"))?;
        let key_name = match skn {
            Some(n) => Some(url_decode(n).map_err(|_| bad("skn is not valid percent-encoding"))?),
            None => None,
        };
        Ok(SasToken {
            raw_sr,
            raw_se,
            signature,
            expiry,
            key_name,
        })
    }

    /// The resource (`sr`), percent-decoded: the audience to check against.
    pub fn resource(&self) -> Result<String> {
        url_decode(&self.raw_sr)
            .map_err(|_| Error::new(ErrorKind::Unauthorized, "malformed SAS token: sr"))
    }

    /// `sr` exactly as it was sent.
    pub fn raw_resource(&self) -> &str {
        &self.raw_sr
    }

    /// The expiry, in Unix seconds.
    pub fn expiry(&self) -> u64 {
        self.expiry
    }

    /// The policy name (`skn`), for policy-signed tokens.
    pub fn key_name(&self) -> Option<&str> {
        self.key_name.as_deref()
    }

    /// Whether the signature was made with this base64 key (constant-time comparison).
    pub fn signed_with(&self, key_base64: &str) -> bool {
        match mac_of(key_base64, &self.raw_sr, &self.raw_se) {
            Ok(mac) => mac.verify_slice(&self.signature).is_ok(),
            Err(_) => false,
        }
    }

    /// Whether the token has expired at `now` (Unix seconds), allowing 5 minutes of skew.
    pub fn is_expired_at(&self, now: u64) -> bool {
        now > self.expiry.saturating_add(MAX_CLOCK_SKEW_SECS)
    }
}

/// Whether a token for `granted` (decoded resource) covers `wanted`: the host must match
/// (case-insensitively) and the path of `granted` must be a whole-segment prefix of `wanted`'s.
pub fn resource_covers(granted: &str, wanted: &str) -> bool {
    let strip = |s: &str| {
        let s = s.trim_end_matches('/');
        let s = s.split_once("://").map(|(_, rest)| rest).unwrap_or(s);
        match s.split_once('/') {
            Some((host, path)) => (host.to_ascii_lowercase(), path.to_string()),
            None => (s.to_ascii_lowercase(), String::new()),
        }
    };
    let (gh, gp) = strip(granted);
    let (wh, wp) = strip(wanted);
    if gh != wh {
        return false;
    }
    gp.is_empty() || wp == gp || wp.starts_with(&format!("{gp}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SERVICE_KEY: &str = "SW9USHViTG9jYWxTZXJ2aWNlUG9saWN5S2V5LTAwMDE=";

    #[test]
    fn vector_v1_device_token() {
        let token = generate_token(
            "myhub.azure-devices.net/devices/device1",
            KEY,
            None,
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(
            token,
            "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000"
        );
        let parsed = SasToken::parse(&token).unwrap();
        assert!(parsed.signed_with(KEY));
        assert_eq!(
            parsed.resource().unwrap(),
            "myhub.azure-devices.net/devices/device1"
        );
    }

    #[test]
    fn vector_v1b_raw_sr_as_the_c_sdk_sends_it() {
        assert_eq!(
            sign(KEY, "myhub.azure-devices.net/devices/device1", "1700000000").unwrap(),
            "NlrxHOPrp0Ykah29gS5LOHFu7Y/i4fWSpV//MjSnuQ8="
        );
        let t = SasToken::parse("SharedAccessSignature sr=myhub.azure-devices.net/devices/device1&sig=NlrxHOPrp0Ykah29gS5LOHFu7Y%2Fi4fWSpV%2F%2FMjSnuQ8%3D&se=1700000000").unwrap();
        assert!(t.signed_with(KEY));
        assert_eq!(
            t.resource().unwrap(),
            "myhub.azure-devices.net/devices/device1"
        );
    }

    #[test]
    fn vector_v1c_lowercase_hex_sr_in_any_field_order() {
        assert_eq!(
            sign(
                KEY,
                "myhub.azure-devices.net%2fdevices%2fdevice1",
                "1700000000"
            )
            .unwrap(),
            "iIyvul1z7xsjQDMXvGvUxZi+lqnXkFn5lOgyNrICYDM="
        );
        // lowercase-hex sig encoding as the C shared utility writes it, and se first
        let t = SasToken::parse("SharedAccessSignature se=1700000000&sig=iIyvul1z7xsjQDMXvGvUxZi%2blqnXkFn5lOgyNrICYDM%3d&sr=myhub.azure-devices.net%2fdevices%2fdevice1").unwrap();
        assert!(t.signed_with(KEY));
        assert!(!t.signed_with(SERVICE_KEY));
        assert_eq!(
            t.resource().unwrap(),
            "myhub.azure-devices.net/devices/device1"
        );
    }

    #[test]
    fn vector_v2_module_token() {
        let t = generate_token(
            "myhub.azure-devices.net/devices/dev1/modules/mod1",
            KEY,
            None,
            1_700_000_000,
        )
        .unwrap();
        assert!(t.contains("sr=myhub.azure-devices.net%2Fdevices%2Fdev1%2Fmodules%2Fmod1&"));
        assert!(t.contains(&format!(
            "sig={}&",
            url_encode("kA6xjFLkZvk4Cdh0nD8uWAzassq6PB47f7BepMMtmlY=")
        )));
    }

    #[test]
    fn vector_v3_service_token_skn_is_not_signed() {
        let t = generate_token(
            "myhub.azure-devices.net",
            SERVICE_KEY,
            Some("service"),
            1_700_003_600,
        )
        .unwrap();
        assert_eq!(
            t,
            "SharedAccessSignature sr=myhub.azure-devices.net&sig=ZmisBd0NT9XpmzHiMTL5m2HiJq5mtzWoTRZMxI9QUig%3D&se=1700003600&skn=service"
        );
        let owner = t.replace("skn=service", "skn=iothubowner");
        let parsed = SasToken::parse(&owner).unwrap();
        assert!(parsed.signed_with(SERVICE_KEY));
        assert_eq!(parsed.key_name(), Some("iothubowner"));
        // Node's order: sr, sig, skn, se; Python's sig leaves '/' unencoded
        let node = "SharedAccessSignature sr=myhub.azure-devices.net&sig=ZmisBd0NT9XpmzHiMTL5m2HiJq5mtzWoTRZMxI9QUig%3D&skn=service&se=1700003600";
        assert!(SasToken::parse(node).unwrap().signed_with(SERVICE_KEY));
    }

    #[test]
    fn expiry_allows_five_minutes_of_skew() {
        let t = SasToken::parse(&generate_token("h/devices/d", KEY, None, 1000).unwrap()).unwrap();
        assert!(!t.is_expired_at(1000));
        assert!(!t.is_expired_at(1300));
        assert!(t.is_expired_at(1301));
    }

    #[test]
    fn malformed_tokens_are_unauthorized() {
        for bad in [
            "sr=a&sig=b&se=1",
            "SharedAccessSignature sr=a&se=1",
            "SharedAccessSignature sr=a&sig=!!!&se=1",
            "SharedAccessSignature sr=a&sig=AAAA&se=soon",
            "SharedAccessSignature sr=a&sr=b&sig=AAAA&se=1",
        ] {
            assert_eq!(
                SasToken::parse(bad).unwrap_err().kind(),
                ErrorKind::Unauthorized,
                "{bad}"
            );
        }
    }

    #[test]
    fn resources_match_by_whole_path_segment() {
        assert!(resource_covers(
            "Hub.Example/devices/a",
            "hub.example/devices/a"
        ));
        assert!(resource_covers(
            "hub.example/devices/a",
            "hub.example/devices/a/modules/m"
        ));
        assert!(!resource_covers(
            "hub.example/devices/a",
            "hub.example/devices/ab"
        ));
        assert!(resource_covers("hub.example", "hub.example/devices/ab"));
        assert!(resource_covers(
            "https://hub.example/",
            "hub.example/devices/x"
        ));
        assert!(!resource_covers("other.example", "hub.example/devices/x"));
    }
}

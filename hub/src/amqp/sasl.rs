//! The SASL layer: MSSBCBS and ANONYMOUS hand authentication to CBS, EXTERNAL to the TLS
//! client certificate (checked when a device link attaches);
//! PLAIN carries a SAS token for the whole connection as `{policy}@sas.root.{hub}` (a policy)
//! or `{device}@sas.{hub}` (a device).

use fe2o3_amqp::frames::sasl::Frame;
use fe2o3_amqp_types::primitives::{Array, Symbol};
use fe2o3_amqp_types::sasl::{SaslCode, SaslMechanisms, SaslOutcome};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::frames::{decode_sasl, read_frame, sasl_frame};
use crate::auth::{Access, Grant};
use crate::context::HubContext;

/// The outcome of a SASL exchange.
pub enum SaslResult {
    /// Authenticated (PLAIN) or deferred to CBS (MSSBCBS, ANONYMOUS).
    Ok(Option<Grant>),
    /// Refused; the outcome was sent.
    Refused(String),
}

/// Runs the SASL exchange after the client's SASL header (ours already sent).
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &HubContext,
    stream: &mut S,
) -> Result<SaslResult, String> {
    let mechanisms = SaslMechanisms {
        sasl_server_mechanisms: Array::from(vec![
            Symbol::from("MSSBCBS"),
            Symbol::from("ANONYMOUS"),
            Symbol::from("EXTERNAL"),
            Symbol::from("PLAIN"),
        ]),
    };
    stream
        .write_all(&sasl_frame(&Frame::Mechanisms(mechanisms)))
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let frame = read_frame(stream, 65536)
        .await?
        .ok_or("the connection closed during SASL")?;
    let init = match decode_sasl(frame)? {
        Frame::Init(init) => init,
        other => return Err(format!("expected sasl-init, got {other:?}")),
    };
    let (code, result) = match init.mechanism.as_str() {
        "MSSBCBS" | "ANONYMOUS" | "EXTERNAL" => (SaslCode::Ok, SaslResult::Ok(None)),
        "PLAIN" => match plain(
            ctx,
            init.initial_response
                .as_ref()
                .map(|b| b.as_slice())
                .unwrap_or(&[]),
        ) {
            Ok(grant) => (SaslCode::Ok, SaslResult::Ok(Some(grant))),
            Err(why) => (SaslCode::Auth, SaslResult::Refused(why)),
        },
        other => (
            SaslCode::Auth,
            SaslResult::Refused(format!("unsupported SASL mechanism '{other}'")),
        ),
    };
    let outcome = Frame::Outcome(SaslOutcome {
        code,
        additional_data: None,
    });
    stream
        .write_all(&sasl_frame(&outcome))
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    Ok(result)
}

/// Checks a PLAIN response: `authzid \0 authcid \0 password`.
fn plain(ctx: &HubContext, response: &[u8]) -> Result<Grant, String> {
    let mut parts = response.split(|b| *b == 0);
    let _authzid = parts.next();
    let authcid = parts.next().ok_or("malformed PLAIN response")?;
    let password = parts.next().ok_or("malformed PLAIN response")?;
    let authcid = std::str::from_utf8(authcid).map_err(|_| "PLAIN user name is not UTF-8")?;
    let token = std::str::from_utf8(password).map_err(|_| "PLAIN password is not UTF-8")?;
    let (who, realm) = authcid
        .split_once('@')
        .ok_or("PLAIN user name must be name@sas[.root].hub")?;
    let hub = c2d::connection_string::hub_name_of(&ctx.host_name);
    if realm == format!("sas.root.{hub}") {
        let grant = ctx
            .authorize(token, Access::Service)
            .map_err(|e| e.to_string())?;
        match &grant.principal {
            crate::auth::Principal::Policy { name, .. } if name == who => Ok(grant),
            _ => Err(format!("the token is not signed by policy '{who}'")),
        }
    } else if realm == format!("sas.{hub}") {
        ctx.authorize(token, Access::Device(who))
            .map_err(|e| e.to_string())
    } else {
        Err(format!("PLAIN realm '{realm}' is not this hub's"))
    }
}

//! AMQP 1.0 framing: protocol headers, and frames as `size | doff | type | channel | body`.
//! Performatives and SASL frames are encoded with fe2o3-amqp's types.

use bytes::{Buf, BytesMut};
use fe2o3_amqp::frames::sasl;
use fe2o3_amqp_types::performatives::Performative;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// `AMQP 0 1 0 0`: plain AMQP.
pub const AMQP_HEADER: [u8; 8] = *b"AMQP\x00\x01\x00\x00";
/// `AMQP 2 1 0 0`: TLS requested in-band.
pub const TLS_HEADER: [u8; 8] = *b"AMQP\x02\x01\x00\x00";
/// `AMQP 3 1 0 0`: SASL.
pub const SASL_HEADER: [u8; 8] = *b"AMQP\x03\x01\x00\x00";

const FRAME_AMQP: u8 = 0;
const FRAME_SASL: u8 = 1;

/// A frame read off the wire.
pub struct RawFrame {
    pub frame_type: u8,
    pub channel: u16,
    /// The body: performative then payload (empty for a heartbeat).
    pub body: BytesMut,
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max_frame_size: usize,
) -> Result<Option<RawFrame>, String> {
    let mut size = [0u8; 4];
    match r.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("read error: {e}")),
    }
    let size = u32::from_be_bytes(size) as usize;
    if size < 8 {
        return Err(format!("frame size {size} is below the minimum of 8"));
    }
    if size > max_frame_size {
        return Err(format!(
            "frame of {size} bytes exceeds the negotiated maximum of {max_frame_size}"
        ));
    }
    let mut buf = BytesMut::zeroed(size - 4);
    r.read_exact(&mut buf)
        .await
        .map_err(|e| format!("read error inside a frame: {e}"))?;
    let doff = buf[0] as usize * 4;
    if doff < 8 || doff > size {
        return Err(format!("bad data offset {doff}"));
    }
    let frame_type = buf[1];
    let channel = u16::from_be_bytes([buf[2], buf[3]]);
    buf.advance(doff - 4);
    Ok(Some(RawFrame {
        frame_type,
        channel,
        body: buf,
    }))
}

/// Decodes an AMQP frame body into its performative and payload; `None` for a heartbeat.
pub fn decode_amqp(frame: RawFrame) -> Result<Option<(Performative, BytesMut)>, String> {
    if frame.frame_type != FRAME_AMQP {
        return Err(format!(
            "frame type {} where an AMQP frame was expected",
            frame.frame_type
        ));
    }
    if frame.body.is_empty() {
        return Ok(None);
    }
    c2d::amqp::check_encoding(&frame.body)?;
    let mut body = frame.body;
    let performative: Performative = {
        let reader = (&mut body).reader();
        serde_amqp::from_reader(reader).map_err(|e| format!("undecodable performative: {e}"))?
    };
    Ok(Some((performative, body)))
}

/// Decodes a SASL frame.
pub fn decode_sasl(frame: RawFrame) -> Result<sasl::Frame, String> {
    if frame.frame_type != FRAME_SASL {
        return Err(format!(
            "frame type {} where a SASL frame was expected",
            frame.frame_type
        ));
    }
    c2d::amqp::check_encoding(&frame.body)?;
    serde_amqp::from_slice(&frame.body).map_err(|e| format!("undecodable SASL frame: {e}"))
}

fn encode(frame_type: u8, channel: u16, body: &impl Serialize, payload: &[u8], out: &mut Vec<u8>) {
    let encoded = serde_amqp::to_vec(body).expect("performatives always encode");
    let size = 8 + encoded.len() + payload.len();
    out.extend_from_slice(&(size as u32).to_be_bytes());
    out.extend_from_slice(&[2, frame_type]);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&encoded);
    out.extend_from_slice(payload);
}

/// Appends an AMQP frame to `out`.
pub fn amqp_frame(channel: u16, performative: &impl Serialize, payload: &[u8], out: &mut Vec<u8>) {
    encode(FRAME_AMQP, channel, performative, payload, out)
}

/// Appends an empty (heartbeat) frame to `out`.
pub fn heartbeat(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 0, 8, 2, FRAME_AMQP, 0, 0]);
}

/// Encodes a SASL frame.
pub fn sasl_frame(frame: &sasl::Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(FRAME_SASL, 0, frame, &[], &mut out);
    out
}

/// The encoded size of a performative (to split transfers into frames).
pub fn encoded_len(performative: &impl Serialize) -> usize {
    serde_amqp::to_vec(performative)
        .map(|v| v.len())
        .unwrap_or(0)
}

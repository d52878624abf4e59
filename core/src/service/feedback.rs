//! Delivery feedback: the records IoT Hub produces when a device settles a message whose
//! `iothub-ack` asked for it, and their JSON.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::timestamp;

/// The content type of a feedback message.
pub const FEEDBACK_CONTENT_TYPE: &str = "application/vnd.microsoft.iothub.feedback.json";

/// How a message's delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedbackStatus {
    /// The device completed the message.
    Success,
    /// The message's time to live passed before it was completed.
    Expired,
    /// The message was abandoned as many times as the hub allows.
    DeliveryCountExceeded,
    /// The device rejected the message.
    Rejected,
    /// The device's queue was purged.
    Purged,
}

impl FeedbackStatus {
    /// The name used on the wire, both as `statusCode` and as `description`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackStatus::Success => "Success",
            FeedbackStatus::Expired => "Expired",
            FeedbackStatus::DeliveryCountExceeded => "DeliveryCountExceeded",
            FeedbackStatus::Rejected => "Rejected",
            FeedbackStatus::Purged => "Purged",
        }
    }

    /// Whether this is a positive outcome (only `Success` is).
    pub fn is_positive(self) -> bool {
        self == FeedbackStatus::Success
    }
}

impl FromStr for FeedbackStatus {
    type Err = Error;
    /// Parses a status name, ignoring case and spaces (`Delivery Count Exceeded` is seen), or
    /// the numeric value of the .NET enum.
    fn from_str(s: &str) -> Result<Self> {
        let folded: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        Ok(match folded.as_str() {
            "success" | "0" => FeedbackStatus::Success,
            "expired" | "1" => FeedbackStatus::Expired,
            "deliverycountexceeded" | "2" => FeedbackStatus::DeliveryCountExceeded,
            "rejected" | "3" => FeedbackStatus::Rejected,
            "purged" | "4" => FeedbackStatus::Purged,
            _ => {
                return Err(Error::new(
                    crate::ErrorKind::Protocol,
                    format!("unknown feedback status '{s}'"),
                ))
            }
        })
    }
}

impl fmt::Display for FeedbackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One feedback record: the outcome of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackRecord {
    /// The message id of the message this is about (as text).
    pub original_message_id: String,
    /// The device the message was for.
    pub device_id: String,
    /// The generation id of that device.
    pub device_generation_id: String,
    /// When the outcome happened.
    pub enqueued_time: SystemTime,
    /// The outcome.
    pub status: FeedbackStatus,
    /// The description the hub gave (the status name for the local hub).
    pub description: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRecord {
    #[serde(default)]
    original_message_id: Option<String>,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    device_generation_id: Option<String>,
    enqueued_time_utc: String,
    #[serde(default)]
    status_code: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
}

impl FeedbackRecord {
    /// A record with `description` set to the status name, as the local hub writes it.
    pub fn new(
        original_message_id: impl Into<String>,
        device_id: impl Into<String>,
        device_generation_id: impl Into<String>,
        enqueued_time: SystemTime,
        status: FeedbackStatus,
    ) -> Self {
        FeedbackRecord {
            original_message_id: original_message_id.into(),
            device_id: device_id.into(),
            device_generation_id: device_generation_id.into(),
            enqueued_time,
            status,
            description: status.as_str().to_string(),
        }
    }

    fn to_wire(&self) -> WireRecord {
        WireRecord {
            original_message_id: Some(self.original_message_id.clone()),
            device_id: Some(self.device_id.clone()),
            device_generation_id: Some(self.device_generation_id.clone()),
            enqueued_time_utc: timestamp::format_utc(self.enqueued_time),
            status_code: Some(serde_json::Value::String(self.status.as_str().to_string())),
            description: Some(self.description.clone()),
        }
    }

    fn from_wire(w: WireRecord) -> Result<Self> {
        let protocol = |m: String| Error::new(crate::ErrorKind::Protocol, m);
        let status = match &w.status_code {
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            Some(serde_json::Value::Number(n)) => n.to_string().parse().ok(),
            _ => None,
        }
        // the C service SDK classifies by description; fall back to it the same way
        .or_else(|| w.description.as_deref().and_then(|d| d.parse().ok()))
        .ok_or_else(|| {
            protocol(format!(
                "feedback record without a known status: {:?}",
                w.status_code
            ))
        })?;
        Ok(FeedbackRecord {
            original_message_id: w.original_message_id.unwrap_or_default(),
            device_id: w.device_id.unwrap_or_default(),
            device_generation_id: w.device_generation_id.unwrap_or_default(),
            enqueued_time: timestamp::parse_utc(&w.enqueued_time_utc)
                .map_err(|e| protocol(format!("feedback record: {}", e.message())))?,
            status,
            description: w.description.unwrap_or_else(|| status.as_str().to_string()),
        })
    }
}

/// Encodes records as the body of one feedback message: a JSON array.
pub fn encode_batch(records: &[FeedbackRecord]) -> Vec<u8> {
    let wire: Vec<WireRecord> = records.iter().map(FeedbackRecord::to_wire).collect();
    serde_json::to_vec(&wire).expect("feedback records always serialize")
}

/// Decodes the body of a feedback message (a JSON array of records).
pub fn decode_batch(body: &[u8]) -> Result<Vec<FeedbackRecord>> {
    let wire: Vec<WireRecord> = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            crate::ErrorKind::Protocol,
            format!("feedback body is not a JSON array of records: {e}"),
        )
    })?;
    wire.into_iter().map(FeedbackRecord::from_wire).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn batch_json_has_iot_hub_field_names_and_seven_digit_times() {
        let t = UNIX_EPOCH + Duration::new(1_444_520_119, 977_400_200);
        let r = FeedbackRecord::new(
            "m1",
            "dev1",
            "638000000000000000",
            t,
            FeedbackStatus::DeliveryCountExceeded,
        );
        let body = String::from_utf8(encode_batch(std::slice::from_ref(&r))).unwrap();
        assert_eq!(
            body,
            r#"[{"originalMessageId":"m1","deviceId":"dev1","deviceGenerationId":"638000000000000000","enqueuedTimeUtc":"2015-10-10T23:35:19.9774002Z","statusCode":"DeliveryCountExceeded","description":"DeliveryCountExceeded"}]"#
        );
        assert_eq!(decode_batch(body.as_bytes()).unwrap(), vec![r]);
    }

    #[test]
    fn status_falls_back_to_description_and_numbers() {
        let b = br#"[{"originalMessageId":"a","enqueuedTimeUtc":"2020-01-01T00:00:00Z","description":"Delivery Count Exceeded"},
                     {"originalMessageId":"b","enqueuedTimeUtc":"2020-01-01T00:00:00Z","statusCode":3}]"#;
        let rs = decode_batch(b).unwrap();
        assert_eq!(rs[0].status, FeedbackStatus::DeliveryCountExceeded);
        assert_eq!(rs[1].status, FeedbackStatus::Rejected);
        assert!(decode_batch(b"{}").is_err());
    }
}

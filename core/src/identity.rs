//! Device and module ids: IoT Hub's character rules.

/// The longest device or module id IoT Hub accepts.
pub const MAX_ID_LEN: usize = 128;

/// Checks a device or module id: 1–128 ASCII characters, alphanumerics and
/// ``- . + % _ # * ? ! ( ) , = @ $ '``.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!(
            "id '{id}' must be 1 to {MAX_ID_LEN} characters long"
        ));
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-.+%_#*?!(),=@$'".contains(*c)))
    {
        Some(c) => Err(format!(
            "id '{id}' has the character '{c}', which IoT Hub does not allow"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iot_hub_id_rules() {
        assert!(validate_id("dev-1.a+b%c_d#e*f?g!h(i),j=k@l$m'n").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("a/b").is_err());
        assert!(validate_id("a b").is_err());
        assert!(validate_id(&"x".repeat(129)).is_err());
    }
}

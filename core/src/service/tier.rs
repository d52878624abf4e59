//! IoT Hub's tiers and the operation throttles each sets, per unit: what
//! [`ServiceClient::send_many`](crate::ServiceClient::send_many) paces to and what a local hub
//! enforces when asked to throttle.
//!
//! The figures are IoT Hub's "Operation throttles" table (learn.microsoft.com, "IoT Hub quotas
//! and throttling"): the Free tier and S1 share a column, S2 has the same C2D figures, S3 has
//! fifty times them. Basic tiers (B1–B3) have no cloud-to-device messaging and are left out.

use std::time::Duration;

use crate::error::{Error, Result};

/// An IoT Hub pricing tier that offers cloud-to-device messaging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Free: one unit, the S1 throttles.
    F1,
    /// Standard S1.
    S1,
    /// Standard S2 (the same C2D throttles as S1).
    S2,
    /// Standard S3.
    S3,
}

impl Tier {
    /// Every tier, cheapest first.
    pub const ALL: [Tier; 4] = [Tier::F1, Tier::S1, Tier::S2, Tier::S3];

    /// Its name as IoT Hub writes it (`S1`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::F1 => "F1",
            Tier::S1 => "S1",
            Tier::S2 => "S2",
            Tier::S3 => "S3",
        }
    }

    /// C2D sends a hub of this tier takes per minute and unit: 100 (F1, S1, S2) or 5 000 (S3).
    pub fn c2d_sends_per_minute(self) -> u32 {
        match self {
            Tier::F1 | Tier::S1 | Tier::S2 => 100,
            Tier::S3 => 5_000,
        }
    }

    /// Device receives over HTTPS per minute and unit: 1 000 (F1, S1, S2) or 50 000 (S3).
    pub fn https_receives_per_minute(self) -> u32 {
        match self {
            Tier::F1 | Tier::S1 | Tier::S2 => 1_000,
            Tier::S3 => 50_000,
        }
    }

    /// Identity registry operations (create, get, list, update, delete) per minute and unit:
    /// 100 (F1, S1, S2) or 5 000 (S3).
    pub fn registry_operations_per_minute(self) -> u32 {
        match self {
            Tier::F1 | Tier::S1 | Tier::S2 => 100,
            Tier::S3 => 5_000,
        }
    }

    /// Registry queries (`POST /devices/query`) per minute and unit: 20 (F1, S1, S2) or 1 000
    /// (S3).
    pub fn queries_per_minute(self) -> u32 {
        match self {
            Tier::F1 | Tier::S1 | Tier::S2 => 20,
            Tier::S3 => 1_000,
        }
    }

    /// The most units a hub of this tier can have: 1 (F1), 200 (S1, S2), 10 (S3).
    pub fn max_units(self) -> u32 {
        match self {
            Tier::F1 => 1,
            Tier::S1 | Tier::S2 => 200,
            Tier::S3 => 10,
        }
    }

    /// The C2D send rate of `units` units of this tier, as a [`Rate`] for `send_many`.
    pub fn units(self, units: u32) -> Rate {
        Rate::Tier { tier: self, units }
    }

    /// Checks a unit count for this tier (1 to [`max_units`](Self::max_units)).
    pub fn check_units(self, units: u32) -> Result<u32> {
        if (1..=self.max_units()).contains(&units) {
            Ok(units)
        } else {
            Err(Error::invalid_argument(format!(
                "a {} hub has 1 to {} units, not {units}",
                self.as_str(),
                self.max_units()
            )))
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tier {
    type Err = Error;
    /// `F1` (or `free`), `S1`, `S2`, `S3`, in any case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "F1" | "FREE" => Ok(Tier::F1),
            "S1" => Ok(Tier::S1),
            "S2" => Ok(Tier::S2),
            "S3" => Ok(Tier::S3),
            _ => Err(Error::invalid_argument(format!(
                "a tier is F1, S1, S2 or S3, not '{s}'"
            ))),
        }
    }
}

/// How fast `send_many` starts sends.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Rate {
    /// As fast as the sends in flight allow (the default): for a local hub, or a hub whose
    /// throttling the caller handles by the refusals alone.
    #[default]
    Unlimited,
    /// At most this many sends a second.
    PerSecond(f64),
    /// IoT Hub's C2D send throttle for `units` units of `tier` (`Tier::S3.units(2)`).
    Tier {
        /// The hub's tier.
        tier: Tier,
        /// Its unit count.
        units: u32,
    },
}

impl Rate {
    /// The rate of a binding's options: a number of sends a second, or a tier's name
    /// (`S1`) with its unit count (1 when absent), or neither (unlimited); not both.
    pub fn from_options(
        per_second: Option<f64>,
        tier: Option<&str>,
        units: Option<u32>,
    ) -> Result<Rate> {
        match (per_second, tier) {
            (Some(_), Some(_)) => Err(Error::invalid_argument("give a rate or a tier, not both")),
            (Some(r), None) => Ok(Rate::PerSecond(r)),
            (None, Some(t)) => Ok(t.parse::<Tier>()?.units(units.unwrap_or(1))),
            (None, None) => Ok(Rate::Unlimited),
        }
    }

    /// Sends a second, `None` for [`Rate::Unlimited`].
    pub fn per_second(self) -> Option<f64> {
        match self {
            Rate::Unlimited => None,
            Rate::PerSecond(r) => Some(r),
            Rate::Tier { tier, units } => {
                Some(f64::from(tier.c2d_sends_per_minute()) * f64::from(units) / 60.0)
            }
        }
    }

    /// The time between two sends, checked (`None`: no pacing).
    pub(crate) fn interval(self) -> Result<Option<Duration>> {
        if let Rate::Tier { tier, units } = self {
            tier.check_units(units)?;
        }
        match self.per_second() {
            None => Ok(None),
            Some(r) if r.is_finite() && r > 0.0 => Ok(Some(Duration::from_secs_f64(1.0 / r))),
            Some(r) => Err(Error::invalid_argument(format!(
                "a rate is a positive number of sends a second, not {r}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_figures_are_iot_hubs() {
        assert_eq!(
            Tier::S3.units(1).per_second().map(|r| (r * 100.0).round()),
            Some(8333.0)
        );
        assert_eq!(
            Tier::S1.units(2).per_second().map(|r| (r * 60.0).round()),
            Some(200.0)
        );
        assert_eq!("free".parse::<Tier>().unwrap(), Tier::F1);
        assert_eq!("s3".parse::<Tier>().unwrap(), Tier::S3);
        assert!("B1".parse::<Tier>().is_err());
        assert!(Tier::F1.units(2).interval().is_err());
        assert!(Tier::S3.units(11).interval().is_err());
        assert!(Rate::PerSecond(0.0).interval().is_err());
        assert_eq!(
            Rate::PerSecond(4.0).interval().unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(Rate::Unlimited.interval().unwrap(), None);
    }
}

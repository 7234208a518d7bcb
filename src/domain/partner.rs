//! Partners (OAuth clients) and their accreditation by the platform operator.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccreditationStatus {
    Pending,
    Accredited,
    Suspended,
}

impl AccreditationStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "accredited" => Some(Self::Accredited),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accredited => "accredited",
            Self::Suspended => "suspended",
        }
    }
}

/// The platform's accreditation of a partner: only accredited partners, inside their
/// validity period, receive tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accreditation {
    pub status: AccreditationStatus,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}

impl Accreditation {
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.status == AccreditationStatus::Accredited
            && self.valid_from.is_none_or(|from| from <= now)
            && self.valid_until.is_none_or(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn only_accredited_within_period_is_valid() {
        let acc = Accreditation {
            status: AccreditationStatus::Accredited,
            valid_from: Some(at(2025)),
            valid_until: Some(at(2031)),
        };
        assert!(acc.is_valid_at(at(2026)));
        assert!(!acc.is_valid_at(at(2024)));
        assert!(!acc.is_valid_at(at(2031)));
        let suspended = Accreditation {
            status: AccreditationStatus::Suspended,
            ..acc.clone()
        };
        assert!(!suspended.is_valid_at(at(2026)));
        let pending = Accreditation {
            status: AccreditationStatus::Pending,
            ..acc
        };
        assert!(!pending.is_valid_at(at(2026)));
    }
}

//! The register: its status and the shift reports it prints.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// `POST /v1/kkt/shift/open` and `POST /v1/kkt/shift/close` answer: the shift report the KKT
/// printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShiftResponse {
    /// `<fn>-<fd>`.
    pub fiscal_doc_id: String,
    pub fn_number: String,
    pub fd_number: u32,
    /// FPD as a decimal string.
    pub fpd: String,
    pub shift_number: u32,
    /// Time of the document from the KKT clock, `YYYY-MM-DDTHH:MM:SS` (device local time).
    pub datetime: String,
}

/// `GET /v1/kkt/devices` answer: every register behind the adapter, in the configured order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Devices {
    pub devices: Vec<Device>,
}

/// One register as the adapter last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Device {
    /// Its id: `kkt_id` of a sale, `{kkt_id}` of the device routes.
    pub kkt_id: String,
    /// Its last exchange got an answer (a refusal such as paper out counts: the device is there).
    pub link_ok: bool,
    pub last_error: Option<String>,
    /// A receipt of this register is still being reconciled; its new sales wait.
    pub unresolved_receipts: bool,
    /// The OFD refused the document at the head of its FN's queue: its delivery stands still.
    pub delivery_stuck: bool,
}

/// `GET /v1/kkt/status` answer: the device's mode and its FN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KktStatus {
    pub mode: KktMode,
    /// The mode number (low nibble of the mode byte, 0 to 15).
    pub mode_code: u8,
    pub fn_number: String,
    /// Number of the last fiscal document in the FN.
    pub last_fd: u32,
    /// A receipt's KKT outcome is still being reconciled (see `/v1/health`).
    pub unresolved_receipts: bool,
}

/// The KKT's mode. On the wire `ShiftOpen`, `ShiftOpenOver24h`, `ShiftClosed`, `DocumentOpen`, or
/// `Other(N)` with the mode number N for any other mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KktMode {
    /// Mode 2: shift open, under 24 hours.
    ShiftOpen,
    /// Mode 3: shift open over 24 hours; only closing it is allowed.
    ShiftOpenOver24h,
    /// Mode 4: shift closed.
    ShiftClosed,
    /// Mode 8: a document is open.
    DocumentOpen,
    /// Any other mode number (0 to 15).
    Other(u8),
}

/// Mode numbers with a name of their own; every other number is `Other(N)`.
const NAMED_MODES: [(KktMode, u8, &str); 4] = [
    (KktMode::ShiftOpen, 2, "ShiftOpen"),
    (KktMode::ShiftOpenOver24h, 3, "ShiftOpenOver24h"),
    (KktMode::ShiftClosed, 4, "ShiftClosed"),
    (KktMode::DocumentOpen, 8, "DocumentOpen"),
];

impl KktMode {
    /// The mode of a mode number (the low nibble of the KKT's mode byte).
    pub fn from_code(code: u8) -> KktMode {
        let code = code & 0x0F;
        NAMED_MODES
            .iter()
            .find(|(_, c, _)| *c == code)
            .map_or(KktMode::Other(code), |(m, _, _)| *m)
    }

    /// Every wire string the mode can take, in mode-number order.
    pub fn wire_values() -> Vec<String> {
        (0..16)
            .map(|code| KktMode::from_code(code).to_string())
            .collect()
    }
}

impl fmt::Display for KktMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMED_MODES.iter().find(|(m, _, _)| m == self) {
            Some((_, _, name)) => f.write_str(name),
            None => match self {
                KktMode::Other(code) => write!(f, "Other({code})"),
                named => unreachable!("{named:?} is in NAMED_MODES"),
            },
        }
    }
}

impl Serialize for KktMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KktMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        (0..16)
            .map(KktMode::from_code)
            .find(|m| m.to_string() == text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown KKT mode `{text}`")))
    }
}

impl utoipa::PartialSchema for KktMode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "The KKT's mode: a name for modes 2, 3, 4 and 8, `Other(N)` for mode number N.",
            ))
            .enum_values(Some(KktMode::wire_values()))
            .into()
    }
}

impl ToSchema for KktMode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kkt_modes_have_their_wire_names() {
        let names: Vec<String> = KktMode::wire_values();
        assert_eq!(names[2], "ShiftOpen");
        assert_eq!(names[3], "ShiftOpenOver24h");
        assert_eq!(names[4], "ShiftClosed");
        assert_eq!(names[8], "DocumentOpen");
        assert_eq!(names[5], "Other(5)");
        assert_eq!(KktMode::from_code(0x12), KktMode::ShiftOpen);
        for name in names {
            let json = serde_json::to_string(&name).unwrap();
            let mode: KktMode = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&mode).unwrap(), json);
        }
    }
}

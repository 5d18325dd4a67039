//! The FFD 1.05 tag table (type, JSON name, maximum length) and the document codes.
//!
//! Names, types and lengths follow yandex/ofd (ofd/protocol.py `DOCUMENTS`, schemas/1.05) where it names a tag.
//! Deliberate departures, each because the FFD 1.05 text or our brief says otherwise:
//! - 1030 `name` allows 128 bytes and 1059 `items` 1024 bytes (FFD 1.05 raised both; yandex keeps 64 and 328).
//! - 1212 `productType` is a Byte (FFD 1.05); yandex declares it U32.
//! - 1078 has no name in yandex; we call it `operatorFiscalSign` (the OFD's sign, "ФПО").
//! - 1225 is left out on purpose: yandex calls it a String, while the kkt-shtrih golden vector carries a
//!   one-byte integer in it, so it stays an unknown tag whose raw bytes round-trip untouched.

/// The value type of a tag, which fixes its byte encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagType {
    /// One byte.
    Byte,
    /// u32 little-endian.
    U32,
    /// u32 little-endian seconds since the Unix epoch.
    UnixTime,
    /// cp866 text, no terminator.
    String,
    /// Unsigned little-endian integer with trailing zero bytes trimmed.
    Vln,
    /// One byte of decimal digits, then a VLN mantissa.
    Fvln,
    /// Raw bytes.
    ByteArray,
    /// A nested list of TLVs; repeated children are repeated TLVs.
    Stlv,
}

/// What the table knows about a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagInfo {
    pub tag: u16,
    /// The key used in the JSON rendering (yandex/ofd naming).
    pub name_json: &'static str,
    pub ty: TagType,
    /// Maximum value length in bytes.
    pub max_len: u16,
    /// Whether the tag may repeat inside its parent; the JSON rendering then always uses an array.
    pub repeated: bool,
}

const fn t(tag: u16, name_json: &'static str, ty: TagType, max_len: u16) -> TagInfo {
    TagInfo {
        tag,
        name_json,
        ty,
        max_len,
        repeated: false,
    }
}

const fn rep(tag: u16, name_json: &'static str, max_len: u16) -> TagInfo {
    TagInfo {
        tag,
        name_json,
        ty: TagType::Stlv,
        max_len,
        repeated: true,
    }
}

use TagType::{Byte, ByteArray, Fvln, Stlv, String, U32, UnixTime, Vln};

/// The table, sorted by tag so that lookups can binary-search it.
static TABLE: &[TagInfo] = &[
    t(1, "fiscalReport", Stlv, 658),
    t(2, "openShift", Stlv, 440),
    t(3, "receipt", Stlv, 32768),
    t(4, "bso", Stlv, 32768),
    t(5, "closeShift", Stlv, 441),
    t(6, "closeArchive", Stlv, 432),
    t(7, "operatorAck", Stlv, 512),
    t(11, "fiscalReportCorrection", Stlv, 658),
    t(21, "currentStateReport", Stlv, 32768),
    t(31, "receiptCorrection", Stlv, 32768),
    t(41, "bsoCorrection", Stlv, 32768),
    t(1000, "docName", String, 256),
    t(1001, "autoMode", Byte, 1),
    t(1002, "offlineMode", Byte, 1),
    t(1008, "buyerAddress", String, 64),
    t(1009, "retailPlaceAddress", String, 256),
    t(1012, "dateTime", UnixTime, 4),
    t(1013, "kktNumber", String, 20),
    t(1017, "ofdInn", String, 12),
    t(1018, "userInn", String, 12),
    t(1020, "totalSum", Vln, 8),
    t(1021, "operator", String, 64),
    t(1022, "ofdResponseCode", Byte, 1),
    t(1023, "quantity", Fvln, 8),
    t(1030, "name", String, 128),
    t(1031, "cashTotalSum", Vln, 8),
    t(1037, "kktRegId", String, 20),
    t(1038, "shiftNumber", U32, 4),
    t(1040, "fiscalDocumentNumber", U32, 4),
    t(1041, "fiscalDriveNumber", String, 16),
    t(1042, "requestNumber", U32, 4),
    t(1043, "sum", Vln, 8),
    t(1046, "ofdName", String, 64),
    t(1048, "user", String, 256),
    t(1050, "fiscalDriveExhaustionSign", Byte, 1),
    t(1051, "fiscalDriveReplaceRequiredSign", Byte, 1),
    t(1052, "fiscalDriveMemoryExceededSign", Byte, 1),
    t(1053, "ofdResponseTimeoutSign", Byte, 1),
    t(1054, "operationType", Byte, 1),
    t(1055, "taxationType", Byte, 1),
    t(1056, "encryptionSign", Byte, 1),
    rep(1059, "items", 1024),
    t(1062, "taxationType", Byte, 1),
    t(1068, "messageToFn", Stlv, 169),
    t(1077, "fiscalSign", Vln, 6),
    t(1078, "operatorFiscalSign", ByteArray, 18),
    t(1079, "price", Vln, 8),
    t(1081, "ecashTotalSum", Vln, 8),
    rep(1084, "properties", 328),
    t(1085, "key", String, 64),
    t(1086, "value", String, 256),
    t(1097, "notTransmittedDocumentsQuantity", U32, 4),
    t(1098, "notTransmittedDocumentsDateTime", UnixTime, 4),
    t(1102, "nds18", Vln, 8),
    t(1103, "nds10", Vln, 8),
    t(1104, "nds0", Vln, 8),
    t(1105, "ndsNo", Vln, 8),
    t(1106, "ndsCalculated18", Vln, 8),
    t(1107, "ndsCalculated10", Vln, 8),
    t(1108, "internetSign", Byte, 1),
    t(1109, "serviceSign", Byte, 1),
    t(1110, "bsoSign", Byte, 1),
    t(1111, "documentsQuantity", U32, 4),
    t(1116, "notTransmittedDocumentNumber", U32, 4),
    t(1117, "senderAddress", String, 64),
    t(1118, "receiptsQuantity", U32, 4),
    t(1171, "providerPhone", String, 19),
    t(1187, "retailPlace", String, 256),
    t(1188, "kktVersion", String, 8),
    t(1189, "documentKktVersion", Byte, 1),
    t(1190, "documentFnVersion", Byte, 1),
    t(1192, "propertiesData", String, 16),
    t(1199, "nds", Byte, 1),
    t(1200, "ndsSum", Vln, 8),
    t(1203, "operatorInn", String, 12),
    t(1209, "fiscalDocumentFormatVer", Byte, 1),
    t(1212, "productType", Byte, 1),
    t(1214, "paymentType", Byte, 1),
    t(1215, "prepaidSum", Vln, 8),
    t(1216, "creditSum", Vln, 8),
    t(1217, "provisionSum", Vln, 8),
    t(1224, "providerData", Stlv, 512),
];

/// Looks a tag up in the table; `None` means the codec keeps its value as raw bytes.
pub fn tag_info(tag: u16) -> Option<&'static TagInfo> {
    TABLE
        .binary_search_by_key(&tag, |info| info.tag)
        .ok()
        .map(|i| &TABLE[i])
}

/// Every tag the table knows, in ascending order (for tests and documentation).
pub fn known_tags() -> impl Iterator<Item = &'static TagInfo> {
    TABLE.iter()
}

/// Document codes: the tag of a document's outer STLV (yandex/ofd `DocCodes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocCode {
    Registration = 1,
    RegistrationChange = 11,
    ShiftOpen = 2,
    CurrentState = 21,
    Receipt = 3,
    ReceiptCorrection = 31,
    Bso = 4,
    BsoCorrection = 41,
    ShiftClose = 5,
    FnClose = 6,
    OperatorAck = 7,
}

impl DocCode {
    /// Maps an outer tag to a document code.
    pub fn from_tag(tag: u16) -> Option<Self> {
        Some(match tag {
            1 => Self::Registration,
            11 => Self::RegistrationChange,
            2 => Self::ShiftOpen,
            21 => Self::CurrentState,
            3 => Self::Receipt,
            31 => Self::ReceiptCorrection,
            4 => Self::Bso,
            41 => Self::BsoCorrection,
            5 => Self::ShiftClose,
            6 => Self::FnClose,
            7 => Self::OperatorAck,
            _ => return None,
        })
    }

    /// The outer tag of this document.
    pub fn tag(self) -> u16 {
        self as u16
    }

    /// The document code as one byte, as the envelope's container header and a Shtrih-M FN
    /// status carry it (every code is below 256).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The document of a code byte.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::from_tag(u16::from(code))
    }

    /// The JSON key of this document (`receipt`, `openShift`, ...).
    pub fn name_json(self) -> &'static str {
        tag_info(self.tag()).map_or("document", |info| info.name_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(TABLE.windows(2).all(|w| w[0].tag < w[1].tag));
    }

    #[test]
    fn fixed_width_types_have_their_width() {
        for info in TABLE {
            match info.ty {
                Byte => assert_eq!(info.max_len, 1, "tag {}", info.tag),
                U32 | UnixTime => assert_eq!(info.max_len, 4, "tag {}", info.tag),
                _ => assert!(info.max_len > 0, "tag {}", info.tag),
            }
        }
    }

    #[test]
    fn brief_tags_are_present() {
        let required = [
            1000, 1008, 1009, 1012, 1013, 1017, 1018, 1020, 1021, 1022, 1023, 1030, 1031, 1037,
            1038, 1040, 1041, 1042, 1043, 1048, 1054, 1055, 1059, 1068, 1077, 1078, 1079, 1081,
            1097, 1098, 1102, 1103, 1104, 1105, 1106, 1107, 1116, 1187, 1192, 1199, 1200, 1209,
            1212, 1214, 1215, 1216, 1217,
        ];
        for tag in required {
            assert!(tag_info(tag).is_some(), "tag {tag} missing");
        }
        let props = tag_info(1192).unwrap();
        assert_eq!(
            (props.name_json, props.ty, props.max_len),
            ("propertiesData", String, 16)
        );
    }

    #[test]
    fn doc_codes_map_both_ways() {
        for code in [1u16, 11, 2, 21, 3, 31, 4, 41, 5, 6, 7] {
            let doc = DocCode::from_tag(code).unwrap();
            assert_eq!(doc.tag(), code);
            assert_eq!(tag_info(code).unwrap().ty, Stlv);
        }
        assert_eq!(DocCode::from_tag(8), None);
        assert_eq!(DocCode::Receipt.name_json(), "receipt");
    }
}

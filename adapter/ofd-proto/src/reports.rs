//! Typed shift-open (2), shift-close (5) reports and the operator acknowledgement (7), built into TLV and read back.

use crate::error::DocError;
use crate::fields::{Fields, push_opt};
use crate::tags::DocCode;
use crate::tlv::Tlv;

/// `fiscalDocumentFormatVer` (1209) of FFD 1.05.
pub const FFD_1_05: u8 = 2;

/// `ofdResponseCode` (1022) for an accepted document.
pub const RESPONSE_OK: u8 = 0;
/// `ofdResponseCode` (1022) for a format-logic check failure (yandex/ofd `FLK_ERROR`).
pub const RESPONSE_FLK_ERROR: u8 = 14;

/// The fields every fiscal document stamped by the FN carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiscalData {
    /// 1037 `kktRegId`.
    pub kkt_reg_id: String,
    /// 1041 `fiscalDriveNumber` (16 digits).
    pub fn_number: String,
    /// 1040 `fiscalDocumentNumber`.
    pub fd_number: u32,
    /// 1012 `dateTime`, Unix seconds.
    pub date_time: u32,
    /// 1077 `fiscalSign` (FPD), at most 6 bytes.
    pub fiscal_sign: u64,
}

impl FiscalData {
    pub(crate) fn read(f: &Fields<'_>) -> Result<Self, DocError> {
        Ok(Self {
            kkt_reg_id: f.string(1037)?,
            fn_number: f.string(1041)?,
            fd_number: f.u32(1040)?,
            date_time: f.u32(1012)?,
            fiscal_sign: f.vln(1077)?,
        })
    }

    pub(crate) fn push_head(&self, out: &mut Vec<Tlv>) {
        out.push(Tlv::time(1012, self.date_time));
        out.push(Tlv::string(1037, self.kkt_reg_id.clone()));
        out.push(Tlv::string(1041, self.fn_number.clone()));
        out.push(Tlv::u32(1040, self.fd_number));
    }

    pub(crate) fn push_sign(&self, out: &mut Vec<Tlv>) {
        out.push(Tlv::vln(1077, self.fiscal_sign));
    }
}

fn check_format(f: &Fields<'_>) -> Result<(), DocError> {
    match f.byte(1209)? {
        FFD_1_05 => Ok(()),
        other => Err(DocError::FormatVersion(other)),
    }
}

/// Shift-open report (document code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftOpen {
    pub fiscal: FiscalData,
    /// 1038 `shiftNumber`.
    pub shift_number: u32,
    /// 1018 `userInn` (seller).
    pub user_inn: String,
    /// 1048 `user` (seller name).
    pub user: Option<String>,
    /// 1021 `operator` (cashier).
    pub operator: Option<String>,
    /// 1009 `retailPlaceAddress`.
    pub retail_address: Option<String>,
}

impl ShiftOpen {
    /// Builds the document STLV.
    pub fn to_tlv(&self) -> Tlv {
        let mut c = vec![Tlv::byte(1209, FFD_1_05)];
        push_opt(&mut c, self.user.clone(), |v| Tlv::string(1048, v));
        c.push(Tlv::string(1018, self.user_inn.clone()));
        push_opt(&mut c, self.operator.clone(), |v| Tlv::string(1021, v));
        push_opt(&mut c, self.retail_address.clone(), |v| {
            Tlv::string(1009, v)
        });
        c.push(Tlv::u32(1038, self.shift_number));
        self.fiscal.push_head(&mut c);
        self.fiscal.push_sign(&mut c);
        Tlv::stlv(DocCode::ShiftOpen.tag(), c)
    }

    /// Reads a decoded document; extra tags are ignored.
    pub fn from_tlv(tlv: &Tlv) -> Result<Self, DocError> {
        let f = Fields::document(tlv, DocCode::ShiftOpen.tag())?;
        check_format(&f)?;
        Ok(Self {
            fiscal: FiscalData::read(&f)?,
            shift_number: f.u32(1038)?,
            user_inn: f.string(1018)?,
            user: Fields::opt(f.string(1048))?,
            operator: Fields::opt(f.string(1021))?,
            retail_address: Fields::opt(f.string(1009))?,
        })
    }
}

/// Shift-close report (document code 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftClose {
    pub fiscal: FiscalData,
    /// 1038 `shiftNumber`.
    pub shift_number: u32,
    /// 1018 `userInn`.
    pub user_inn: String,
    /// 1021 `operator`.
    pub operator: Option<String>,
    /// 1118 `receiptsQuantity`: receipts in the shift.
    pub receipts_quantity: u32,
    /// 1111 `documentsQuantity`: fiscal documents in the shift.
    pub documents_quantity: u32,
    /// 1097 `notTransmittedDocumentsQuantity`: the FN's OFD backlog.
    pub not_transmitted_count: u32,
    /// 1098 `notTransmittedDocumentsDateTime`: time of the oldest unsent document (0 when none).
    pub not_transmitted_since: u32,
    /// 1053 `ofdResponseTimeoutSign`.
    pub ofd_timeout: bool,
    /// 1051 `fiscalDriveReplaceRequiredSign`.
    pub fn_replace_required: bool,
    /// 1052 `fiscalDriveMemoryExceededSign`.
    pub fn_memory_exceeded: bool,
    /// 1050 `fiscalDriveExhaustionSign`.
    pub fn_exhausted: bool,
}

impl ShiftClose {
    /// Builds the document STLV.
    pub fn to_tlv(&self) -> Tlv {
        let mut c = vec![
            Tlv::byte(1209, FFD_1_05),
            Tlv::string(1018, self.user_inn.clone()),
        ];
        push_opt(&mut c, self.operator.clone(), |v| Tlv::string(1021, v));
        c.push(Tlv::u32(1038, self.shift_number));
        c.push(Tlv::u32(1118, self.receipts_quantity));
        c.push(Tlv::u32(1111, self.documents_quantity));
        c.push(Tlv::u32(1097, self.not_transmitted_count));
        c.push(Tlv::time(1098, self.not_transmitted_since));
        c.push(Tlv::byte(1053, u8::from(self.ofd_timeout)));
        c.push(Tlv::byte(1051, u8::from(self.fn_replace_required)));
        c.push(Tlv::byte(1052, u8::from(self.fn_memory_exceeded)));
        c.push(Tlv::byte(1050, u8::from(self.fn_exhausted)));
        self.fiscal.push_head(&mut c);
        self.fiscal.push_sign(&mut c);
        Tlv::stlv(DocCode::ShiftClose.tag(), c)
    }

    /// Reads a decoded document; extra tags are ignored.
    pub fn from_tlv(tlv: &Tlv) -> Result<Self, DocError> {
        let f = Fields::document(tlv, DocCode::ShiftClose.tag())?;
        check_format(&f)?;
        Ok(Self {
            fiscal: FiscalData::read(&f)?,
            shift_number: f.u32(1038)?,
            user_inn: f.string(1018)?,
            operator: Fields::opt(f.string(1021))?,
            receipts_quantity: f.u32(1118)?,
            documents_quantity: f.u32(1111)?,
            not_transmitted_count: f.u32(1097)?,
            not_transmitted_since: f.u32(1098)?,
            ofd_timeout: f.byte(1053)? != 0,
            fn_replace_required: f.byte(1051)? != 0,
            fn_memory_exceeded: f.byte(1052)? != 0,
            fn_exhausted: f.byte(1050)? != 0,
        })
    }
}

/// The OFD's acknowledgement of one document (document code 7), the body of its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAck {
    /// 1017 `ofdInn`.
    pub ofd_inn: String,
    /// 1041 `fiscalDriveNumber` of the acknowledged document.
    pub fn_number: String,
    /// 1040 `fiscalDocumentNumber` of the acknowledged document.
    pub fd_number: u32,
    /// 1012 `dateTime` of the acknowledgement.
    pub date_time: u32,
    /// 1068 `messageToFn` { 1022 `ofdResponseCode` }: `RESPONSE_OK` or an error such as `RESPONSE_FLK_ERROR`.
    pub response_code: u8,
    /// 1078, the operator's fiscal sign (FPO), up to 18 bytes; the mock may fill it with a fake.
    pub operator_sign: Option<Vec<u8>>,
}

impl OperatorAck {
    /// Builds the document STLV in the order the yandex/ofd mock writes it.
    pub fn to_tlv(&self) -> Tlv {
        let mut c = vec![
            Tlv::string(1017, self.ofd_inn.clone()),
            Tlv::string(1041, self.fn_number.clone()),
            Tlv::u32(1040, self.fd_number),
            Tlv::time(1012, self.date_time),
            Tlv::stlv(1068, vec![Tlv::byte(1022, self.response_code)]),
        ];
        push_opt(&mut c, self.operator_sign.clone(), |v| Tlv::bytes(1078, v));
        Tlv::stlv(DocCode::OperatorAck.tag(), c)
    }

    /// Reads a decoded acknowledgement; extra tags are ignored.
    pub fn from_tlv(tlv: &Tlv) -> Result<Self, DocError> {
        let f = Fields::document(tlv, DocCode::OperatorAck.tag())?;
        let message = tlv.find(1068).ok_or(DocError::Missing { tag: 1068 })?;
        Ok(Self {
            ofd_inn: f.string(1017)?,
            fn_number: f.string(1041)?,
            fd_number: f.u32(1040)?,
            date_time: f.u32(1012)?,
            response_code: Fields(message).byte(1022)?,
            operator_sign: Fields::opt(f.bytes(1078))?,
        })
    }

    /// Decodes acknowledgement bytes (an OFD reply's body, or the ticket an FN stored).
    pub fn decode(bytes: &[u8]) -> Result<Self, DocError> {
        Self::from_tlv(&crate::tlv::decode_document(bytes)?)
    }
}

//! What a fiscal document is to the adapter: the kinds it issues, what it keeps of a document the FN
//! stamped, read through `ofd-proto`'s typed documents, and what it prints from one (the QR string).
//!
//! Every other module learns about fiscal documents here: the KKT driver reads documents back into a
//! [`FiscalDocument`], the service and reconciliation ask it for its [`DocKind`] and receipt id, the
//! journal stores it, and the POS edge renders its QR string. The FFD tag numbers live in `ofd-proto`
//! and in this file only.

use ofd_proto::tlv::decode_document_prefix;
use ofd_proto::{DocCode, Receipt, ShiftClose, ShiftOpen};

/// The kinds of fiscal document the adapter issues and journals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    /// A sale (or refund, buy, buy refund) posted by the POS.
    Receipt,
    /// The shift-open report.
    ShiftOpen,
    /// The shift-close report.
    ShiftClose,
}

impl DocKind {
    /// The kind of an FFD document code; `None` for documents the adapter never issues.
    pub fn of_code(code: DocCode) -> Option<Self> {
        match code {
            DocCode::Receipt => Some(Self::Receipt),
            DocCode::ShiftOpen => Some(Self::ShiftOpen),
            DocCode::ShiftClose => Some(Self::ShiftClose),
            _ => None,
        }
    }

    /// The FFD document code of this kind.
    pub fn code(self) -> DocCode {
        match self {
            Self::Receipt => DocCode::Receipt,
            Self::ShiftOpen => DocCode::ShiftOpen,
            Self::ShiftClose => DocCode::ShiftClose,
        }
    }
}

/// What the adapter keeps of one document the FN stamped, as read back from the FN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiscalDocument {
    /// FN serial number (16 digits).
    pub fn_number: String,
    /// Fiscal document number within the FN.
    pub fd_number: u32,
    /// Fiscal sign of the document (FPD), as printed.
    pub fpd: u32,
    /// Shift number.
    pub shift_number: u32,
    /// Receipt number within the shift (0 for shift reports).
    pub receipt_number: u32,
    /// Date and time as the KKT printed it, `YYYY-MM-DDTHH:MM:SS` (device local time).
    pub fiscal_time: String,
    /// Document total in kopecks (0 for shift reports).
    pub total_kopecks: i64,
    /// The FFD document as TLV, read back from the FN.
    pub document_tlv: Vec<u8>,
}

/// Why a document read back from the FN is not one the adapter keeps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The bytes are not a well-formed document of a kind the adapter issues.
    #[error("document TLV: {0}")]
    Malformed(String),
    /// A well-formed document of a kind the adapter never issues (a registration report, say).
    #[error("a {} document, which this adapter does not issue", .0.name_json())]
    Foreign(DocCode),
}

/// One of the documents the adapter issues, typed.
enum Typed {
    Receipt(Receipt),
    ShiftOpen(ShiftOpen),
    ShiftClose(ShiftClose),
}

fn typed(tlv: &[u8]) -> Result<Typed, DocumentError> {
    let malformed = |e: &dyn std::fmt::Display| DocumentError::Malformed(e.to_string());
    // The FN hands out the document followed by nothing, but a reader may pad a last block.
    let (doc, _) = decode_document_prefix(tlv).map_err(|e| malformed(&e))?;
    let code = DocCode::from_tag(doc.tag)
        .ok_or_else(|| DocumentError::Malformed(format!("outer tag {}", doc.tag)))?;
    match DocKind::of_code(code).ok_or(DocumentError::Foreign(code))? {
        DocKind::Receipt => Receipt::from_tlv(&doc).map(Typed::Receipt),
        DocKind::ShiftOpen => ShiftOpen::from_tlv(&doc).map(Typed::ShiftOpen),
        DocKind::ShiftClose => ShiftClose::from_tlv(&doc).map(Typed::ShiftClose),
    }
    .map_err(|e| malformed(&e))
}

impl FiscalDocument {
    /// Reads a document's TLV as the FN returned it.
    pub fn from_tlv(tlv: Vec<u8>) -> Result<Self, DocumentError> {
        let (fiscal, shift_number, receipt_number, total) = match typed(&tlv)? {
            Typed::Receipt(r) => (r.fiscal, r.shift_number, r.request_number, r.total_sum),
            Typed::ShiftOpen(s) => (s.fiscal, s.shift_number, 0, 0),
            Typed::ShiftClose(s) => (s.fiscal, s.shift_number, 0, 0),
        };
        Ok(Self {
            fn_number: fiscal.fn_number.trim().to_owned(),
            fd_number: fiscal.fd_number,
            // The printed FPD is the sign's low 32 bits (ten digits at most).
            fpd: fiscal.fiscal_sign as u32,
            shift_number,
            receipt_number,
            fiscal_time: format_device_time(u64::from(fiscal.date_time)),
            total_kopecks: i64::try_from(total)
                .map_err(|_| DocumentError::Malformed(format!("total {total} kopecks")))?,
            document_tlv: tlv,
        })
    }

    /// The document's kind; `None` only if the stored TLV no longer reads as one (never for a
    /// document built by [`FiscalDocument::from_tlv`]).
    pub fn kind(&self) -> Option<DocKind> {
        Some(match typed(&self.document_tlv).ok()? {
            Typed::Receipt(_) => DocKind::Receipt,
            Typed::ShiftOpen(_) => DocKind::ShiftOpen,
            Typed::ShiftClose(_) => DocKind::ShiftClose,
        })
    }

    /// The adapter's receipt id (tag 1192) the document carries, if it is a receipt with one.
    pub fn receipt_id(&self) -> Option<String> {
        match typed(&self.document_tlv).ok()? {
            Typed::Receipt(r) => r.properties_data.map(|s| s.trim().to_owned()),
            _ => None,
        }
    }

    /// The operation type (tag 1054: 1 sale, 2 sale refund, 3 buy, 4 buy refund); 0 for a report.
    pub fn operation_type(&self) -> u8 {
        match typed(&self.document_tlv) {
            Ok(Typed::Receipt(r)) => r.operation_type.as_u8(),
            _ => 0,
        }
    }

    /// The KKT's registration number (tag 1037) the document carries; `""` if it does not read.
    pub fn registration_number(&self) -> String {
        match typed(&self.document_tlv) {
            Ok(Typed::Receipt(r)) => r.fiscal.kkt_reg_id,
            Ok(Typed::ShiftOpen(s)) => s.fiscal.kkt_reg_id,
            Ok(Typed::ShiftClose(s)) => s.fiscal.kkt_reg_id,
            Err(_) => String::new(),
        }
        .trim()
        .to_owned()
    }

    /// The id the POS API gives the document: `FN-FD`.
    pub fn doc_id(&self) -> String {
        format!("{}-{}", self.fn_number, self.fd_number)
    }

    /// The string the receipt's QR code carries, as the tax service's check app reads it:
    /// `t=YYYYMMDDTHHMM&s=RUB.KK&fn=..&i=FD&fp=FPD&n=OPERATION`.
    pub fn qr(&self) -> String {
        let t: String = self
            .fiscal_time
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .take(13)
            .collect();
        let total = self.total_kopecks.max(0);
        format!(
            "t={t}&s={}.{:02}&fn={}&i={}&fp={}&n={}",
            total / 100,
            total % 100,
            self.fn_number,
            self.fd_number,
            self.fpd,
            self.operation_type()
        )
    }
}

/// FFD times are device-local wall-clock seconds; they are printed without an offset, as on the receipt.
fn format_device_time(unix_seconds: u64) -> String {
    jiff::Timestamp::from_second(unix_seconds as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_else(|_| format!("@{unix_seconds}"))
}

#[cfg(test)]
mod tests {
    use ofd_proto::{FiscalData, OperationType, ReceiptItem, Tlv};

    use super::*;

    fn head(fd: u32) -> FiscalData {
        FiscalData {
            kkt_reg_id: "0000000001012345".into(),
            fn_number: "9999078900012345".into(),
            fd_number: fd,
            date_time: 1_700_000_000,
            fiscal_sign: 0x0001_2345_6789,
        }
    }

    fn receipt(op: OperationType, total: u64, id: Option<&str>) -> Vec<u8> {
        Receipt {
            fiscal: head(7),
            request_number: 3,
            shift_number: 2,
            operation_type: op,
            taxation_type: 1,
            total_sum: total,
            items: vec![ReceiptItem {
                name: "Milk".into(),
                price: total,
                quantity: ofd_proto::Fvln::new(1, 0),
                sum: total,
                nds: Some(6),
                nds_sum: None,
                product_type: Some(1),
                payment_type: Some(4),
            }],
            cash_total: Some(total),
            ecash_total: None,
            user_inn: None,
            user: None,
            operator: None,
            buyer_contact: None,
            properties_data: id.map(str::to_owned),
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn a_receipt_reads_back_with_its_kind_id_and_qr_string() {
        let doc = FiscalDocument::from_tlv(receipt(
            OperationType::SaleRefund,
            12_345,
            Some("0123456789abcdef"),
        ))
        .unwrap();
        assert_eq!(doc.fd_number, 7);
        assert_eq!(doc.fpd, 0x2345_6789);
        assert_eq!((doc.shift_number, doc.receipt_number), (2, 3));
        assert_eq!(doc.total_kopecks, 12_345);
        assert_eq!(doc.kind(), Some(DocKind::Receipt));
        assert_eq!(doc.receipt_id().as_deref(), Some("0123456789abcdef"));
        assert_eq!(doc.doc_id(), "9999078900012345-7");
        assert_eq!(
            doc.qr(),
            format!(
                "t={}&s=123.45&fn=9999078900012345&i=7&fp={}&n=2",
                doc.fiscal_time.replace(['-', ':'], "")[..13].to_owned(),
                0x2345_6789u32
            )
        );
    }

    #[test]
    fn shift_reports_carry_no_receipt_id_and_a_zero_total() {
        let open = ShiftOpen {
            fiscal: head(8),
            shift_number: 4,
            user_inn: "7700000000".into(),
            user: None,
            operator: None,
            retail_address: None,
        };
        let doc = FiscalDocument::from_tlv(open.to_tlv().encode().unwrap()).unwrap();
        assert_eq!(doc.kind(), Some(DocKind::ShiftOpen));
        assert_eq!(
            (doc.shift_number, doc.receipt_number, doc.total_kopecks),
            (4, 0, 0)
        );
        assert_eq!(doc.receipt_id(), None);
        assert_eq!(doc.operation_type(), 0);
    }

    #[test]
    fn a_document_the_adapter_never_issues_is_named_not_misread() {
        let registration = Tlv::stlv(DocCode::Registration.tag(), vec![Tlv::byte(1209, 2)])
            .encode()
            .unwrap();
        assert_eq!(
            FiscalDocument::from_tlv(registration),
            Err(DocumentError::Foreign(DocCode::Registration))
        );
        let truncated = receipt(OperationType::Sale, 100, None)[..20].to_vec();
        assert!(matches!(
            FiscalDocument::from_tlv(truncated),
            Err(DocumentError::Malformed(_))
        ));
    }

    #[test]
    fn kinds_and_codes_map_both_ways() {
        for kind in [DocKind::Receipt, DocKind::ShiftOpen, DocKind::ShiftClose] {
            assert_eq!(DocKind::of_code(kind.code()), Some(kind));
        }
        assert_eq!(DocKind::of_code(DocCode::OperatorAck), None);
    }
}

//! The typed view of an FFD 1.05 receipt (document code 3, 1209 = 2): required fields, items, payments.

use crate::error::DocError;
use crate::fields::{Fields, push_opt};
use crate::reports::{FFD_1_05, FiscalData};
use crate::tags::DocCode;
use crate::tlv::{Fvln, Tlv};

/// 1054 `operationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationType {
    Sale = 1,
    SaleRefund = 2,
    Buy = 3,
    BuyRefund = 4,
}

impl OperationType {
    pub fn from_u8(v: u8) -> Result<Self, DocError> {
        Ok(match v {
            1 => Self::Sale,
            2 => Self::SaleRefund,
            3 => Self::Buy,
            4 => Self::BuyRefund,
            other => return Err(DocError::OperationType(other)),
        })
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// One 1059 `items` entry. Money is in kopecks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptItem {
    /// 1030 `name`.
    pub name: String,
    /// 1079 `price` per unit.
    pub price: u64,
    /// 1023 `quantity`.
    pub quantity: Fvln,
    /// 1043 `sum`, the item total.
    pub sum: u64,
    /// 1199 `nds`, the VAT rate code.
    pub nds: Option<u8>,
    /// 1200 `ndsSum`.
    pub nds_sum: Option<u64>,
    /// 1212 `productType`.
    pub product_type: Option<u8>,
    /// 1214 `paymentType`.
    pub payment_type: Option<u8>,
}

impl ReceiptItem {
    fn to_tlv(&self) -> Tlv {
        let mut c = Vec::new();
        push_opt(&mut c, self.payment_type, |v| Tlv::byte(1214, v));
        push_opt(&mut c, self.product_type, |v| Tlv::byte(1212, v));
        c.push(Tlv::string(1030, self.name.clone()));
        c.push(Tlv::vln(1079, self.price));
        c.push(Tlv::fvln(1023, self.quantity));
        c.push(Tlv::vln(1043, self.sum));
        push_opt(&mut c, self.nds, |v| Tlv::byte(1199, v));
        push_opt(&mut c, self.nds_sum, |v| Tlv::vln(1200, v));
        Tlv::stlv(1059, c)
    }

    fn from_tlv(tlv: &Tlv) -> Result<Self, DocError> {
        let f = Fields(tlv);
        Ok(Self {
            name: f.string(1030)?,
            price: f.vln(1079)?,
            quantity: f.fvln(1023)?,
            sum: f.vln(1043)?,
            nds: Fields::opt(f.byte(1199))?,
            nds_sum: Fields::opt(f.vln(1200))?,
            product_type: Fields::opt(f.byte(1212))?,
            payment_type: Fields::opt(f.byte(1214))?,
        })
    }
}

/// An FFD 1.05 receipt. Money is in kopecks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// 1037, 1041, 1040, 1012, 1077.
    pub fiscal: FiscalData,
    /// 1042 `requestNumber`: receipt number within the shift.
    pub request_number: u32,
    /// 1038 `shiftNumber`.
    pub shift_number: u32,
    /// 1054 `operationType`.
    pub operation_type: OperationType,
    /// 1055 `taxationType` bitmask.
    pub taxation_type: u8,
    /// 1020 `totalSum`.
    pub total_sum: u64,
    /// 1059 `items`.
    pub items: Vec<ReceiptItem>,
    /// 1031 `cashTotalSum`.
    pub cash_total: Option<u64>,
    /// 1081 `ecashTotalSum`.
    pub ecash_total: Option<u64>,
    /// 1018 `userInn`.
    pub user_inn: Option<String>,
    /// 1048 `user`.
    pub user: Option<String>,
    /// 1021 `operator` (cashier).
    pub operator: Option<String>,
    /// 1008 `buyerAddress`: the buyer's phone or e-mail.
    pub buyer_contact: Option<String>,
    /// 1192 `propertiesData`: up to 16 characters; the adapter carries its receipt id here.
    pub properties_data: Option<String>,
}

impl Receipt {
    /// Builds the document STLV (outer tag 3). Lengths and characters are checked when it is encoded.
    pub fn to_tlv(&self) -> Tlv {
        let mut c = vec![Tlv::byte(1209, FFD_1_05)];
        push_opt(&mut c, self.user.clone(), |v| Tlv::string(1048, v));
        push_opt(&mut c, self.user_inn.clone(), |v| Tlv::string(1018, v));
        push_opt(&mut c, self.operator.clone(), |v| Tlv::string(1021, v));
        c.push(Tlv::u32(1042, self.request_number));
        c.push(Tlv::u32(1038, self.shift_number));
        c.push(Tlv::byte(1054, self.operation_type.as_u8()));
        c.push(Tlv::byte(1055, self.taxation_type));
        c.extend(self.items.iter().map(ReceiptItem::to_tlv));
        c.push(Tlv::vln(1020, self.total_sum));
        push_opt(&mut c, self.cash_total, |v| Tlv::vln(1031, v));
        push_opt(&mut c, self.ecash_total, |v| Tlv::vln(1081, v));
        push_opt(&mut c, self.buyer_contact.clone(), |v| Tlv::string(1008, v));
        push_opt(&mut c, self.properties_data.clone(), |v| {
            Tlv::string(1192, v)
        });
        self.fiscal.push_head(&mut c);
        self.fiscal.push_sign(&mut c);
        Tlv::stlv(DocCode::Receipt.tag(), c)
    }

    /// Encodes the document STLV to bytes.
    pub fn encode(&self) -> Result<Vec<u8>, DocError> {
        Ok(self.to_tlv().encode()?)
    }

    /// Reads a decoded receipt, requiring 1209 = 2 and every field the FFD 1.05 schema requires.
    pub fn from_tlv(tlv: &Tlv) -> Result<Self, DocError> {
        let f = Fields::document(tlv, DocCode::Receipt.tag())?;
        match f.byte(1209)? {
            FFD_1_05 => {}
            other => return Err(DocError::FormatVersion(other)),
        }
        let items = tlv
            .find_all(1059)
            .map(ReceiptItem::from_tlv)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            fiscal: FiscalData::read(&f)?,
            request_number: f.u32(1042)?,
            shift_number: f.u32(1038)?,
            operation_type: OperationType::from_u8(f.byte(1054)?)?,
            taxation_type: f.byte(1055)?,
            total_sum: f.vln(1020)?,
            items,
            cash_total: Fields::opt(f.vln(1031))?,
            ecash_total: Fields::opt(f.vln(1081))?,
            user_inn: Fields::opt(f.string(1018))?,
            user: Fields::opt(f.string(1048))?,
            operator: Fields::opt(f.string(1021))?,
            buyer_contact: Fields::opt(f.string(1008))?,
            properties_data: Fields::opt(f.string(1192))?,
        })
    }

    /// Decodes document bytes and reads them as a receipt.
    pub fn decode(bytes: &[u8]) -> Result<Self, DocError> {
        Self::from_tlv(&crate::tlv::decode_document(bytes)?)
    }
}

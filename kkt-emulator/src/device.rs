//! The device state machine: modes, passwords, shifts and receipts, committing every change to the FN store.
//!
//! Each command computes its change first; the change is committed durably (a document or OFD ticket
//! appended to the FN log, or a new head file) and only then applied to the current state, so an answer
//! never leaves for a change that is not on disk. A commit never copies or rewrites the journal.

use std::time::{SystemTime, UNIX_EPOCH};

use kkt_proto::DeviceError;
use kkt_proto::request::{CloseCheck, CloseReceipt, FnOperation, LegacyItem, ReceiptType};

use crate::docs::{self, ReceiptClose};
use crate::store::{
    FnState, ItemRecord, LogRecord, OfdAck, OpenReceipt, Store, StoreError, StoredDoc,
};

/// Mode 2: shift open.
pub const MODE_SHIFT_OPEN: u8 = 2;
/// Mode 3: shift open for more than 24 hours.
pub const MODE_SHIFT_EXPIRED: u8 = 3;
/// Mode 4: shift closed.
pub const MODE_SHIFT_CLOSED: u8 = 4;
/// Mode 8: a document (receipt) is open.
pub const MODE_RECEIPT_OPEN: u8 = 8;
/// Password of the system administrator (operator 30).
pub const ADMIN_PASSWORD: u32 = 30;
const SHIFT_MAX_S: u32 = 24 * 3600;

/// Printer conditions the fault menu can switch on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions {
    /// No receipt tape.
    pub paper_out: bool,
    /// Cover open.
    pub cover_open: bool,
}

/// Error byte the emulator answers for an open cover. Shtrih lists no dedicated "cover open" byte in the
/// pyshtrih table, so it answers 0x6B like a missing tape would, and shows the cover flag in status 10/11.
pub const COVER_OPEN_ERROR: DeviceError = DeviceError::NoReceiptTape;

/// The volatile and durable state of one virtual register.
#[derive(Debug)]
pub struct Device {
    /// The durable FN state (the last committed copy).
    pub st: FnState,
    store: Store,
    /// FF41 was received (volatile, lost on power cut, like the real device's RAM).
    begin_open: bool,
    /// FF42 was received.
    begin_close: bool,
    /// FF3A read-back buffer and cursor.
    pub(crate) doc_read: Option<(Vec<u8>, usize)>,
    /// FF32/FF33 reply being written: announced size and bytes so far.
    pub(crate) ofd_in: Option<(usize, Vec<u8>)>,
    /// A stopped device clock (control API), so tests can assert exact times and fiscal signs.
    pub frozen_time: Option<u32>,
}

/// The host's clock in Unix seconds.
pub fn host_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Maps a store failure to the FN's "FN failure" byte: nothing was committed.
fn store_err(e: &StoreError) -> DeviceError {
    tracing::error!(error = %e, "FN state could not be committed");
    DeviceError::FnFailure
}

/// Maps Shtrih's FF46 tax bitmask to the FFD 1199 rate code.
pub fn vat_from_tax_bits(bits: u8) -> Option<u8> {
    Some(match bits {
        1 => 1,
        2 => 2,
        4 => 5,
        8 => 6,
        16 => 3,
        32 => 4,
        _ => return None,
    })
}

/// Maps a legacy tax index (table 6 of a factory-set device: 1 = 20 %, 2 = 10 %, 3 = 0 %, 4 = no VAT).
fn vat_from_legacy(taxes: [u8; 4]) -> Result<u8, DeviceError> {
    match taxes.iter().copied().find(|t| *t != 0) {
        None | Some(4) => Ok(6),
        Some(1) => Ok(1),
        Some(2) => Ok(2),
        Some(3) => Ok(5),
        Some(_) => Err(DeviceError::BadParameters),
    }
}

fn text_of(t: &kkt_proto::wire::Text) -> String {
    t.to_string_lossy()
        .trim_end_matches(['\0', ' '])
        .to_string()
}

impl Device {
    /// A device over `st`, saving to `store`.
    pub fn new(st: FnState, store: Store) -> Self {
        Self {
            st,
            store,
            begin_open: false,
            begin_close: false,
            doc_read: None,
            ofd_in: None,
            frozen_time: None,
        }
    }

    /// Forgets everything volatile, as a power cycle does.
    pub fn power_cycle(&mut self) {
        self.begin_open = false;
        self.begin_close = false;
        self.doc_read = None;
        self.ofd_in = None;
    }

    /// The device clock in Unix seconds (host clock plus the settable offset).
    pub fn now(&self) -> u32 {
        if let Some(t) = self.frozen_time {
            return t;
        }
        let t = host_now().saturating_add(self.st.clock_offset_s);
        u32::try_from(t.max(0)).unwrap_or(u32::MAX)
    }

    /// The current mode byte (2, 3, 4 or 8).
    pub fn mode(&self) -> u8 {
        if self.st.open_receipt.is_some() {
            MODE_RECEIPT_OPEN
        } else if !self.st.shift_open {
            MODE_SHIFT_CLOSED
        } else if self.now().saturating_sub(self.st.shift_opened_at) > SHIFT_MAX_S {
            MODE_SHIFT_EXPIRED
        } else {
            MODE_SHIFT_OPEN
        }
    }

    /// Checks a password and returns the operator number (factory passwords: operator N has password N).
    pub fn operator(password: u32) -> Result<u8, DeviceError> {
        match u8::try_from(password) {
            Ok(n @ 1..=30) => Ok(n),
            _ => Err(DeviceError::WrongPassword),
        }
    }

    /// Commits a head-only change (`next` is a [`FnState::head_clone`]) durably, then makes it current.
    pub(crate) fn commit_head(&mut self, mut next: FnState) -> Result<(), DeviceError> {
        if next != self.st.head_clone() {
            self.store.save_head(&next).map_err(|e| store_err(&e))?;
            next.documents = std::mem::take(&mut self.st.documents);
            self.st = next;
        }
        Ok(())
    }

    /// Commits a log record (a document or an OFD ticket) durably, then applies it.
    fn commit_record(&mut self, rec: LogRecord) -> Result<(), DeviceError> {
        self.store.append(&rec).map_err(|e| store_err(&e))?;
        self.st.apply(rec);
        Ok(())
    }

    /// Commits a new document; its effect on the counters follows from it ([`FnState::apply`]).
    fn commit_doc(&mut self, doc: StoredDoc) -> Result<&StoredDoc, DeviceError> {
        self.commit_record(LogRecord::Doc(doc))?;
        self.last_doc()
    }

    /// Commits the OFD's ticket for document `fd`.
    pub(crate) fn commit_ack(&mut self, fd: u32, ack: OfdAck) -> Result<(), DeviceError> {
        self.commit_record(LogRecord::Ack { fd, ack })
    }

    /// Saves the head (used after control-API changes such as the clock offset).
    pub fn persist(&mut self) -> Result<(), StoreError> {
        self.store.save_head(&self.st)
    }

    /// Replaces the FN with `fresh` (control-API reset): written from scratch first, then current.
    pub fn replace_fn(&mut self, fresh: FnState) -> Result<(), StoreError> {
        self.store.create(&fresh)?;
        self.st = fresh;
        Ok(())
    }

    fn printer(c: Conditions) -> Result<(), DeviceError> {
        if c.paper_out {
            Err(DeviceError::NoReceiptTape)
        } else if c.cover_open {
            Err(COVER_OPEN_ERROR)
        } else {
            Ok(())
        }
    }

    /// Requires an open shift of at most 24 h and no open receipt.
    fn need_shift_no_receipt(&self) -> Result<(), DeviceError> {
        match self.mode() {
            MODE_RECEIPT_OPEN => Err(DeviceError::ReceiptOpen),
            MODE_SHIFT_CLOSED => Err(DeviceError::ShiftNotOpen),
            MODE_SHIFT_EXPIRED => Err(DeviceError::ShiftOver24h),
            _ => Ok(()),
        }
    }

    /// FF41: begin opening a shift (prints the header on a real device).
    pub fn begin_open_shift(&mut self, c: Conditions) -> Result<(), DeviceError> {
        Self::printer(c)?;
        match self.mode() {
            MODE_RECEIPT_OPEN => Err(DeviceError::ReceiptOpen),
            MODE_SHIFT_CLOSED => {
                self.begin_open = true;
                Ok(())
            }
            _ => Err(DeviceError::ShiftOpen),
        }
    }

    /// FF0B / E0: opens the shift; returns the new shift's document.
    pub fn open_shift(&mut self, c: Conditions, legacy: bool) -> Result<&StoredDoc, DeviceError> {
        Self::printer(c)?;
        match self.mode() {
            MODE_RECEIPT_OPEN => return Err(DeviceError::ReceiptOpen),
            MODE_SHIFT_CLOSED => {}
            _ => return Err(DeviceError::ShiftOpen),
        }
        if !legacy && !self.begin_open {
            // The FN refuses FF0B without FF41 first: "wrong FN state".
            return Err(DeviceError::FnWrongState);
        }
        let now = self.now();
        // The document carries the new shift number; committing it opens the shift.
        let mut next = self.st.head_clone();
        next.shift_number += 1;
        let doc =
            docs::shift_open(&next, next.last_fd + 1, now).map_err(|_| DeviceError::FnFailure)?;
        self.commit_doc(doc)?;
        self.begin_open = false;
        self.last_doc()
    }

    /// FF42: begin closing the shift.
    pub fn begin_close_shift(&mut self, c: Conditions) -> Result<(), DeviceError> {
        Self::printer(c)?;
        match self.mode() {
            MODE_RECEIPT_OPEN => Err(DeviceError::ReceiptOpen),
            MODE_SHIFT_CLOSED => Err(DeviceError::ShiftNotOpen),
            _ => {
                self.begin_close = true;
                Ok(())
            }
        }
    }

    /// FF43 / 41: closes the shift (allowed over 24 h: that is how an expired shift ends).
    pub fn close_shift(&mut self, c: Conditions, legacy: bool) -> Result<&StoredDoc, DeviceError> {
        Self::printer(c)?;
        match self.mode() {
            MODE_RECEIPT_OPEN => return Err(DeviceError::ReceiptOpen),
            MODE_SHIFT_CLOSED => return Err(DeviceError::ShiftNotOpen),
            _ => {}
        }
        if !legacy && !self.begin_close {
            return Err(DeviceError::FnWrongState);
        }
        let now = self.now();
        let doc = docs::shift_close(&self.st, self.st.last_fd + 1, now)
            .map_err(|_| DeviceError::FnFailure)?;
        self.commit_doc(doc)?;
        self.begin_close = false;
        self.last_doc()
    }

    fn last_doc(&self) -> Result<&StoredDoc, DeviceError> {
        self.st.documents.last().ok_or(DeviceError::FnFailure)
    }

    /// 8D: opens a receipt of the given type.
    pub fn open_receipt(
        &mut self,
        c: Conditions,
        operator: u8,
        ty: ReceiptType,
    ) -> Result<(), DeviceError> {
        Self::printer(c)?;
        self.need_shift_no_receipt()?;
        let op_type = match ty {
            ReceiptType::Sale => 1,
            ReceiptType::SaleReturn => 2,
            ReceiptType::Buy => 3,
            ReceiptType::BuyReturn => 4,
        };
        self.start_receipt(operator, op_type)
    }

    fn start_receipt(&mut self, operator: u8, op_type: u8) -> Result<(), DeviceError> {
        let mut next = self.st.head_clone();
        next.open_receipt = Some(OpenReceipt {
            op_type,
            operator,
            items: Vec::new(),
            extra_tlv: Vec::new(),
        });
        self.commit_head(next)
    }

    /// Adds a line, opening a receipt of `op_type` first when none is open (as FF46 and 80 do).
    fn add_line(&mut self, operator: u8, op_type: u8, rec: ItemRecord) -> Result<(), DeviceError> {
        ofd_proto::tlv::encode_cp866(1030, &rec.name).map_err(|_| DeviceError::BadParameters)?;
        match &self.st.open_receipt {
            Some(r) if r.op_type != op_type => return Err(DeviceError::Other(0x49)),
            Some(_) => {}
            None => self.need_shift_no_receipt()?,
        }
        let mut next = self.st.head_clone();
        let receipt = next.open_receipt.get_or_insert_with(|| OpenReceipt {
            op_type,
            operator,
            items: Vec::new(),
            extra_tlv: Vec::new(),
        });
        if receipt.items.len() >= 100 {
            // "Исчерпан лимит операций в чеке": a bound on the receipt's size.
            return Err(DeviceError::Other(0x94));
        }
        receipt.items.push(rec);
        self.commit_head(next)
    }

    /// FF46: one receipt line in FFD 1.05 form.
    pub fn fn_operation(
        &mut self,
        c: Conditions,
        operator: u8,
        op: &FnOperation,
    ) -> Result<(), DeviceError> {
        Self::printer(c)?;
        if !(1..=4).contains(&op.check_type) || op.quantity == 0 {
            return Err(DeviceError::BadParameters);
        }
        let vat = vat_from_tax_bits(op.tax_bits).ok_or(DeviceError::BadParameters)?;
        let auto = u128::from(op.price) * u128::from(op.quantity);
        let sum = match op.sum {
            Some(s) => s,
            None => {
                u64::try_from((auto + 500_000) / 1_000_000).map_err(|_| DeviceError::Other(0x60))?
            }
        };
        let rec = ItemRecord {
            name: text_of(&op.name),
            quantity_micro: op.quantity,
            price: op.price,
            sum,
            vat,
            payment_method: op.payment_method,
            payment_object: op.payment_object,
        };
        // FF46 check types: 1 sale, 2 sale refund, 3 buy, 4 buy refund, the same numbers as tag 1054.
        self.add_line(operator, op.check_type, rec)
    }

    /// 80 / 82: a legacy sale or sale-return line (quantity in 10^-3).
    pub fn legacy_item(
        &mut self,
        c: Conditions,
        operator: u8,
        item: &LegacyItem,
        refund: bool,
    ) -> Result<(), DeviceError> {
        Self::printer(c)?;
        let quantity_micro = item
            .quantity
            .checked_mul(1000)
            .ok_or(DeviceError::Other(0x62))?;
        if quantity_micro == 0 {
            return Err(DeviceError::BadParameters);
        }
        let sum = u64::try_from((u128::from(item.price) * u128::from(item.quantity) + 500) / 1000)
            .map_err(|_| DeviceError::Other(0x60))?;
        let rec = ItemRecord {
            name: text_of(&item.text),
            quantity_micro,
            price: item.price,
            sum,
            vat: vat_from_legacy(item.taxes)?,
            payment_method: 4,
            payment_object: 1,
        };
        self.add_line(operator, if refund { 2 } else { 1 }, rec)
    }

    /// FF0C: extra TLV for the open receipt.
    pub fn send_tlv(&mut self, tlv: &[u8]) -> Result<(), DeviceError> {
        if self.st.open_receipt.is_none() {
            return Err(DeviceError::ReceiptClosed);
        }
        docs::check_extra_tlv(tlv).map_err(|_| DeviceError::FnBadParameters)?;
        let mut next = self.st.head_clone();
        if let Some(r) = next.open_receipt.as_mut() {
            if r.extra_tlv.len() + tlv.len() > 1024 {
                return Err(DeviceError::FnTlvTooLarge);
            }
            r.extra_tlv.extend_from_slice(tlv);
        }
        self.commit_head(next)
    }

    /// 88: cancels the open receipt (no fiscal document).
    pub fn cancel(&mut self) -> Result<(), DeviceError> {
        if self.st.open_receipt.is_none() {
            return Err(DeviceError::ReceiptClosed);
        }
        let mut next = self.st.head_clone();
        next.open_receipt = None;
        self.commit_head(next)
    }

    /// Closes the open receipt with `cash` and `other` (electronic) payments; returns the document.
    fn close(
        &mut self,
        c: Conditions,
        cash_paid: u64,
        other: u64,
        tax_system: u8,
    ) -> Result<&StoredDoc, DeviceError> {
        Self::printer(c)?;
        let Some(open) = self.st.open_receipt.clone() else {
            return Err(DeviceError::ReceiptClosed);
        };
        if self.mode() == MODE_SHIFT_EXPIRED
            || self.now().saturating_sub(self.st.shift_opened_at) > SHIFT_MAX_S
        {
            return Err(DeviceError::ShiftOver24h);
        }
        let total: u64 = open.items.iter().map(|i| i.sum).sum();
        if total == 0 {
            return Err(DeviceError::ZeroTotal);
        }
        if other > total {
            return Err(DeviceError::CashlessAboveTotal);
        }
        let paid = cash_paid
            .checked_add(other)
            .ok_or(DeviceError::BadParameters)?;
        if paid < total {
            return Err(DeviceError::PaymentsBelowTotal);
        }
        let change = paid - total;
        let close = ReceiptClose {
            op_type: open.op_type,
            tax_system,
            items: open.items,
            extra_tlv: open.extra_tlv,
            total,
            cash: cash_paid - change,
            card: other,
            change,
        };
        let now = self.now();
        let receipt_no = self.st.receipts_in_shift + 1;
        // Committing the receipt also closes it and counts it in the shift (see `FnState::apply`).
        let doc = docs::receipt(&self.st, self.st.last_fd + 1, now, receipt_no, &close)
            .map_err(|_| DeviceError::FnBadParameters)?;
        self.commit_doc(doc)
    }

    /// FF45: close with 16 payment sums (1 cash, the rest electronic), taxes and the taxation system.
    pub fn close_receipt(
        &mut self,
        c: Conditions,
        r: &CloseReceipt,
    ) -> Result<&StoredDoc, DeviceError> {
        let other = r.payments[1..]
            .iter()
            .try_fold(0u64, |a, p| a.checked_add(*p));
        let other = other.ok_or(DeviceError::BadParameters)?;
        if r.tax_system.count_ones() != 1 || r.tax_system > 32 {
            return Err(DeviceError::BadParameters);
        }
        self.close(c, r.payments[0], other, r.tax_system)
    }

    /// 85: legacy close with four payment sums; taxation system OSN.
    pub fn close_check(
        &mut self,
        c: Conditions,
        r: &CloseCheck,
    ) -> Result<&StoredDoc, DeviceError> {
        if r.discount != 0 {
            // Receipt-level discounts are outside the emulated subset; refusing beats silently ignoring.
            return Err(DeviceError::NotSupported);
        }
        let other = r.payments[1..]
            .iter()
            .try_fold(0u64, |a, p| a.checked_add(*p));
        self.close(
            c,
            r.payments[0],
            other.ok_or(DeviceError::BadParameters)?,
            1,
        )
    }

    /// 17: prints a line of text (no fiscal document; allowed in any mode, inside a receipt too).
    pub fn print_string(c: Conditions) -> Result<(), DeviceError> {
        Self::printer(c)
    }

    /// 40: X report (prints shift totals; no fiscal document).
    pub fn x_report(&self, c: Conditions) -> Result<(), DeviceError> {
        Self::printer(c)?;
        match self.mode() {
            MODE_RECEIPT_OPEN => Err(DeviceError::ReceiptOpen),
            MODE_SHIFT_CLOSED => Err(DeviceError::ShiftNotOpen),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kkt_proto::wire::Text;

    fn dev() -> Device {
        Device::new(FnState::fresh(1), Store::memory())
    }

    fn item(price: u64) -> FnOperation {
        FnOperation {
            check_type: 1,
            quantity: 1_000_000,
            price,
            sum: None,
            tax_value: None,
            tax_bits: 1,
            department: 1,
            payment_method: 4,
            payment_object: 1,
            name: Text::from_raw(b"Tea".to_vec()),
        }
    }

    fn close(cash: u64, card: u64) -> CloseReceipt {
        let mut payments = [0u64; 16];
        payments[0] = cash;
        payments[1] = card;
        CloseReceipt {
            payments,
            rounding: 0,
            taxes: [0; 6],
            tax_system: 1,
            text: Text::from_raw(Vec::new()),
        }
    }

    #[test]
    fn wrong_sequence_gets_the_device_error() {
        let c = Conditions::default();
        let mut d = dev();
        assert_eq!(
            d.fn_operation(c, 1, &item(100)),
            Err(DeviceError::ShiftNotOpen)
        );
        assert_eq!(
            d.open_shift(c, false).err(),
            Some(DeviceError::FnWrongState)
        );
        d.begin_open_shift(c).expect("ff41");
        assert_eq!(d.open_shift(c, false).map(|x| x.fd).ok(), Some(1));
        assert_eq!(d.begin_open_shift(c), Err(DeviceError::ShiftOpen));
        d.fn_operation(c, 1, &item(100)).expect("item");
        assert_eq!(d.open_shift(c, true).err(), Some(DeviceError::ReceiptOpen));
        assert_eq!(
            d.close_receipt(c, &close(50, 0)).err(),
            Some(DeviceError::PaymentsBelowTotal)
        );
        assert_eq!(
            d.close_receipt(c, &close(0, 200)).err(),
            Some(DeviceError::CashlessAboveTotal)
        );
        let doc = d.close_receipt(c, &close(500, 0)).expect("close");
        assert_eq!((doc.fd, doc.change, doc.cash), (2, 400, 100));
        assert_eq!(d.cancel(), Err(DeviceError::ReceiptClosed));
        assert_eq!(Device::operator(31), Err(DeviceError::WrongPassword));
        assert_eq!(Device::operator(0), Err(DeviceError::WrongPassword));
    }

    #[test]
    fn shift_over_24h_refuses_sales_but_closes() {
        let c = Conditions::default();
        let mut d = dev();
        d.open_shift(c, true).expect("open");
        d.st.clock_offset_s = 25 * 3600;
        assert_eq!(d.mode(), MODE_SHIFT_EXPIRED);
        assert_eq!(
            d.fn_operation(c, 1, &item(100)),
            Err(DeviceError::ShiftOver24h)
        );
        assert_eq!(d.close_shift(c, true).map(|x| x.fd).ok(), Some(2));
        assert_eq!(d.mode(), MODE_SHIFT_CLOSED);
    }

    #[test]
    fn paper_out_refuses_printing_but_not_cancel() {
        let mut d = dev();
        d.open_shift(Conditions::default(), true).expect("open");
        d.fn_operation(Conditions::default(), 1, &item(100))
            .expect("item");
        let out = Conditions {
            paper_out: true,
            cover_open: false,
        };
        assert_eq!(
            d.close_receipt(out, &close(100, 0)).err(),
            Some(DeviceError::NoReceiptTape)
        );
        d.cancel().expect("cancel");
        assert_eq!(d.st.last_fd, 1);
    }
}

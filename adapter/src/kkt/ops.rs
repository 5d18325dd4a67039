//! High-level KKT operations built from single commands: status, shifts, fiscalizing a sale, reading a
//! document back, and finding a receipt by the adapter's id (tag 1192) during reconciliation.
//!
//! All of these run on the driver thread (blocking) and are called through [`super::KktHandle::run`].

use kkt_proto::{Answer, DeviceError, DeviceMode, ErrorClass, Request};

use super::commands::receipt_commands;
use super::{Durable, Kkt, KktError};
use crate::fiscal::FiscalDocument;
use crate::sale::Sale;

/// What the device reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStatus {
    pub mode: DeviceMode,
    pub fn_number: String,
    pub last_fd: u32,
}

/// How fiscalizing a sale failed.
#[derive(Debug, thiserror::Error)]
pub enum FiscalizeError {
    /// Certainly no fiscal document exists for the sale (the close command was never sent, or the
    /// device refused it definitely).
    #[error("{0}")]
    Definite(KktError),
    /// The close command may have been executed: reconciliation must find out.
    #[error("{0}")]
    Indeterminate(KktError),
    /// The sale was never journaled as in flight, so the close command was never sent and the
    /// half-built receipt was cancelled: certainly no document.
    #[error(
        "the sale could not be journaled as in flight; its receipt was cancelled before the close"
    )]
    NotJournaled,
}

/// Reads the mode (10) and the FN's last document number (FF01). The first command of a session also
/// drains any answer the device still held for an earlier process (ENQ -> ACK).
pub fn status(kkt: &mut Kkt) -> Result<DeviceStatus, KktError> {
    let mode = match kkt.call(&Request::ShortStatus)? {
        Answer::ShortStatus(s) => DeviceMode::from_byte(s.mode).0,
        other => return Err(unexpected("10", &other)),
    };
    match kkt.call(&Request::FnStatus)? {
        Answer::FnStatus(f) => Ok(DeviceStatus {
            mode,
            fn_number: String::from_utf8_lossy(&f.fn_number).trim().to_owned(),
            last_fd: f.last_fd,
        }),
        other => Err(unexpected("FF01", &other)),
    }
}

/// Everything the device tells about itself in one look: mode and sensors (10), the FN (FF01), the
/// shift (FF40) and the FN's queue for the OFD (FF39).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSnapshot {
    pub mode: DeviceMode,
    /// Short-status flags (bit 1 receipt roll present, bit 10 cover up).
    pub flags: u16,
    pub fn_number: String,
    /// FN life phase bits (bit 1 fiscal mode open).
    pub fn_life_phase: u8,
    /// FN warning bits.
    pub fn_warnings: u8,
    /// The FN clock: year - 2000, month, day, hour, minute.
    pub fn_datetime: [u8; 5],
    pub last_fd: u32,
    pub shift_open: bool,
    pub shift_number: u32,
    /// Documents the OFD has not acknowledged, and the first of them (number, time as above).
    pub ofd_queue_len: u16,
    pub ofd_first_fd: u32,
    pub ofd_first_datetime: [u8; 5],
}

/// Reads a [`DeviceSnapshot`]: four status commands, none of which prints or changes anything.
pub fn snapshot(kkt: &mut Kkt) -> Result<DeviceSnapshot, KktError> {
    let (mode, flags) = match kkt.call(&Request::ShortStatus)? {
        Answer::ShortStatus(s) => (DeviceMode::from_byte(s.mode).0, s.flags),
        other => return Err(unexpected("10", &other)),
    };
    let fn_status = match kkt.call(&Request::FnStatus)? {
        Answer::FnStatus(f) => f,
        other => return Err(unexpected("FF01", &other)),
    };
    let shift = match kkt.call(&Request::FnShiftParams)? {
        Answer::FnShiftParams(p) => p,
        other => return Err(unexpected("FF40", &other)),
    };
    let exchange = match kkt.call(&Request::FnExchangeStatus)? {
        Answer::FnExchangeStatus(x) => x,
        other => return Err(unexpected("FF39", &other)),
    };
    Ok(DeviceSnapshot {
        mode,
        flags,
        fn_number: fn_status.fn_number_str(),
        fn_life_phase: fn_status.life_phase,
        fn_warnings: fn_status.warnings,
        fn_datetime: fn_status.datetime,
        last_fd: fn_status.last_fd,
        shift_open: shift.shift_open != 0,
        shift_number: u32::from(shift.shift_number),
        ofd_queue_len: exchange.queue_len,
        ofd_first_fd: exchange.first_fd,
        ofd_first_datetime: exchange.first_datetime,
    })
}

/// Prints an X report (40): the shift's totals so far, no fiscal document.
pub fn x_report(kkt: &mut Kkt) -> Result<(), KktError> {
    kkt.call(&Request::XReport)?;
    Ok(())
}

fn unexpected(cmd: &str, answer: &Answer) -> KktError {
    KktError::Protocol(format!("unexpected answer to {cmd}: {answer:?}"))
}

/// Opens a shift (FF41 + FF0B) and returns the shift-open document read back from the FN.
pub fn open_shift(kkt: &mut Kkt) -> Result<FiscalDocument, KktError> {
    kkt.call(&Request::FnBeginOpenShift)?;
    match kkt.call(&Request::FnOpenShift)? {
        Answer::FnOpenShift(doc) => read_fiscal_data(kkt, doc.fd_number),
        other => Err(unexpected("FF0B", &other)),
    }
}

/// Closes the shift (FF42 + FF43) and returns the shift-close document read back from the FN.
pub fn close_shift(kkt: &mut Kkt) -> Result<FiscalDocument, KktError> {
    kkt.call(&Request::FnBeginCloseShift)?;
    match kkt.call(&Request::FnCloseShift)? {
        Answer::FnCloseShift(doc) => read_fiscal_data(kkt, doc.fd_number),
        other => Err(unexpected("FF43", &other)),
    }
}

/// Cancels an open receipt (88) if the device has one; says whether it did.
pub fn cancel_open_receipt(kkt: &mut Kkt) -> Result<bool, KktError> {
    if mode(kkt)? != DeviceMode::DocumentOpen {
        return Ok(false);
    }
    kkt.call(&Request::CancelReceipt)?;
    Ok(true)
}

/// The device mode alone (one short-status command).
pub fn mode(kkt: &mut Kkt) -> Result<DeviceMode, KktError> {
    match kkt.call(&Request::ShortStatus)? {
        Answer::ShortStatus(s) => Ok(DeviceMode::from_byte(s.mode).0),
        other => Err(unexpected("10", &other)),
    }
}

/// Brings the device to "shift open, no receipt open", opening (and, past 24 hours, first closing)
/// the shift when allowed. Returns the shift documents it produced, to be journaled.
pub fn prepare_for_sale(
    kkt: &mut Kkt,
    auto_open_shift: bool,
) -> Result<Vec<FiscalDocument>, KktError> {
    let mut produced = Vec::new();
    let mut mode = mode(kkt)?;
    if mode == DeviceMode::DocumentOpen {
        // Only a receipt that was never closed can be open here: in-flight receipts are reconciled
        // before any sale starts, so this one has no fiscal document and is safe to cancel.
        kkt.call(&Request::CancelReceipt)?;
        tracing::warn!("cancelled a receipt left open on the KKT");
        mode = self::mode(kkt)?;
    }
    if mode == DeviceMode::ShiftOpenOver24h && auto_open_shift {
        produced.push(close_shift(kkt)?);
    }
    if matches!(mode, DeviceMode::ShiftClosed | DeviceMode::ShiftOpenOver24h) && auto_open_shift {
        produced.push(open_shift(kkt)?);
    }
    Ok(produced)
}

/// What [`sell`] produced: the shift documents it made on the way (to be journaled), and the
/// receipt's outcome.
pub type SaleOutcome = (Vec<FiscalDocument>, Result<FiscalDocument, FiscalizeError>);

/// Prepares the register ([`prepare_for_sale`]) and fiscalizes `sale` ([`fiscalize`]), its close
/// only once `in_flight` says the sale is journaled as in flight.
///
/// A register this driver knows to be ready ([`Kkt::known_ready`]) is not asked its mode first. If
/// it turns out not to be (the shift passed 24 hours, or was closed or a receipt opened behind the
/// driver), the first item is refused with a shift or document error: definitely, nothing was
/// printed and the half-built receipt was cancelled. Then the sale is prepared as if the status
/// had been read, and tried once more. A refusal the status could not have prevented (no paper,
/// bad parameters) is the sale's outcome as before, with no second try.
pub fn sell(
    kkt: &mut Kkt,
    auto_open_shift: bool,
    sale: &Sale,
    receipt_id: &str,
    in_flight: &mut Durable,
) -> Result<SaleOutcome, KktError> {
    let skipped_status = kkt.known_ready();
    let mut shifts = if skipped_status {
        Vec::new()
    } else {
        prepare_for_sale(kkt, auto_open_shift)?
    };
    let mut result = fiscalize(kkt, sale, receipt_id, in_flight);
    let again = match &result {
        // An earlier session's commands ran in the middle of the receipt and it was cancelled
        // before its close: once more, now that the line is clean.
        Err(FiscalizeError::Definite(KktError::Interfered { .. })) => true,
        Err(FiscalizeError::Definite(e)) => {
            skipped_status
                && e.device_error().is_some_and(|d| {
                    matches!(d.class(), ErrorClass::Shift | ErrorClass::Document)
                        || matches!(d, DeviceError::WrongMode | DeviceError::WrongSubmode)
                })
        }
        _ => false,
    };
    if again {
        if skipped_status && let Err(e) = &result {
            tracing::info!(error = %e, "the KKT was not ready as last seen; reading its status and trying the receipt again");
        }
        shifts.extend(prepare_for_sale(kkt, auto_open_shift)?);
        result = fiscalize(kkt, sale, receipt_id, in_flight);
    }
    Ok((shifts, result))
}

/// Fiscalizes `sale` as one receipt carrying tag 1192 = `receipt_id`: items (FF46), extra TLV (FF0C),
/// close (FF45), then reads the document back. The device must be prepared ([`prepare_for_sale`]).
///
/// The close, the first command that can make a fiscal document, waits for `in_flight`: the sale's
/// in-flight state is committed while the items are on the line, and a sale the journal does not
/// hold as in flight is cancelled before its close ([`FiscalizeError::NotJournaled`]).
pub fn fiscalize(
    kkt: &mut Kkt,
    sale: &Sale,
    receipt_id: &str,
    in_flight: &mut Durable,
) -> Result<FiscalDocument, FiscalizeError> {
    // Until the close command is sent no fiscal document can exist: every failure is definite, and
    // the half-built receipt is cancelled (best effort; the next sale cancels it otherwise).
    let before_close = |kkt: &mut Kkt, e: KktError| {
        cancel_half_built(kkt);
        FiscalizeError::Definite(e)
    };
    // Built (and encoded) before the first byte goes out: a sale the commands cannot carry fails
    // here, definitely, with nothing sent and nothing to cancel.
    let commands = receipt_commands(sale, receipt_id)
        .map_err(|e| FiscalizeError::Definite(KktError::Encode(e.to_string())))?;
    for item in &commands.items {
        if let Err(e) = kkt.call(item) {
            return Err(before_close(kkt, e));
        }
    }
    // Answers drained now belong to commands of an earlier session that the device ran in the
    // middle of this receipt (an item it added, say): its contents are no longer ours. Cancel it
    // before the close command, while no document can exist yet.
    let stale = kkt.take_stale();
    if !stale.is_empty() {
        let e = KktError::Interfered {
            answers: stale.len(),
        };
        return Err(before_close(kkt, e));
    }
    if let Err(e) = kkt.call(&commands.extra_tlv) {
        return Err(before_close(kkt, e));
    }
    if !in_flight.wait() {
        cancel_half_built(kkt);
        return Err(FiscalizeError::NotJournaled);
    }
    let doc = match kkt.call(&commands.close) {
        Ok(Answer::CloseReceipt(doc)) => doc,
        Ok(other) => return Err(FiscalizeError::Indeterminate(unexpected("FF45", &other))),
        Err(e) if e.is_definite() => return Err(before_close(kkt, e)),
        Err(e) => return Err(FiscalizeError::Indeterminate(e)),
    };
    // The document exists now. If reading it back fails, reconciliation reads it later by its 1192.
    read_fiscal_data(kkt, doc.fd_number).map_err(FiscalizeError::Indeterminate)
}

/// Cancels the receipt being built before its close (best effort; the next sale cancels it
/// otherwise).
fn cancel_half_built(kkt: &mut Kkt) {
    if let Err(cancel) = cancel_open_receipt(kkt) {
        tracing::warn!(error = %cancel, "could not cancel the half-built receipt");
    }
}

/// Reads a whole document (FF3A, then FF3B blocks) as its TLV bytes.
pub fn read_document(kkt: &mut Kkt, fd_number: u32) -> Result<Vec<u8>, KktError> {
    let size = match kkt.call(&Request::FnReadDocument { fd_number })? {
        Answer::FnReadDocument(h) => usize::from(h.size),
        other => return Err(unexpected("FF3A", &other)),
    };
    let mut tlv = Vec::with_capacity(size);
    // Each block carries at least one byte, so `size` blocks bound the loop.
    for _ in 0..=size {
        if tlv.len() >= size {
            break;
        }
        match kkt.call(&Request::FnReadDocumentBlock)? {
            Answer::FnReadDocumentBlock(block) if !block.is_empty() => {
                tlv.extend_from_slice(&block)
            }
            other => return Err(unexpected("FF3B", &other)),
        }
    }
    if tlv.len() != size {
        return Err(KktError::Protocol(format!(
            "document {fd_number}: read {} of {size} bytes",
            tlv.len()
        )));
    }
    Ok(tlv)
}

/// Reads a document back as the fiscal document the adapter keeps.
pub fn read_fiscal_data(kkt: &mut Kkt, fd_number: u32) -> Result<FiscalDocument, KktError> {
    let tlv = read_document(kkt, fd_number)?;
    FiscalDocument::from_tlv(tlv)
        .map_err(|e| KktError::Protocol(format!("document {fd_number}: {e}")))
}

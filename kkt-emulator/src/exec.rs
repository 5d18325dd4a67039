//! Command dispatch: a decoded `kkt_proto::Request` in, a `kkt_proto::Reply` out, plus whether a fiscal
//! document was committed (the power-cut fault waits for that).

use kkt_proto::answer::{
    DeviceInfo, FnStatus, FullStatus, ReceiptDocument, ShiftDocument, ShiftParams, ShortStatus,
};
use kkt_proto::{Answer, CommandCode, DeviceError, Reply, Request, Text};

use crate::clock::{civil, datetime5};
use crate::device::{Conditions, Device, MODE_RECEIPT_OPEN};
use crate::store::StoredDoc;

/// The result of one command.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The answer to send.
    pub reply: Reply,
    /// A fiscal document was committed by this command.
    pub committed_fd: Option<u32>,
}

/// Short-status flags with paper present: bit 1 receipt roll, bit 4 decimal point, bit 7 receipt optical sensor.
const FLAGS_PAPER: u16 = 0x0092;
/// Bit 10: the cover is up.
const FLAG_COVER_OPEN: u16 = 0x0400;

fn shift_answer(doc: &StoredDoc) -> ShiftDocument {
    ShiftDocument {
        shift_number: u16::try_from(doc.shift).unwrap_or(u16::MAX),
        fd_number: doc.fd,
        fpd: doc.fpd,
    }
}

impl Device {
    fn flags(c: Conditions) -> (u16, u8) {
        let mut flags = if c.paper_out {
            FLAGS_PAPER & !0x0082
        } else {
            FLAGS_PAPER
        };
        if c.cover_open {
            flags |= FLAG_COVER_OPEN;
        }
        // Submode 1: "passive out of paper".
        (flags, u8::from(c.paper_out))
    }

    /// The raw mode byte: the mode in the low nibble, the receipt type in the high one for mode 8.
    fn mode_byte(&self) -> u8 {
        let mode = self.mode();
        match (&self.st.open_receipt, mode) {
            (Some(r), MODE_RECEIPT_OPEN) => {
                let ty = match r.op_type {
                    3 => 1,
                    2 => 2,
                    4 => 3,
                    _ => 0,
                };
                mode | (ty << 4)
            }
            _ => mode,
        }
    }

    fn short_status(&self, c: Conditions, operator: u8) -> ShortStatus {
        let (flags, submode) = Self::flags(c);
        let ops = self.st.open_receipt.as_ref().map_or(0, |r| r.items.len());
        ShortStatus {
            operator,
            flags,
            mode: self.mode_byte(),
            submode,
            operations: u16::try_from(ops).unwrap_or(u16::MAX),
            battery: 0x9C,
            power: 0x9C,
            fp_error: 0,
            eklz_error: 0,
            reserved: [0; 3],
            tail: vec![0],
        }
    }

    fn full_status(&self, c: Conditions, operator: u8) -> FullStatus {
        let (flags, submode) = Self::flags(c);
        let (y, mo, d, h, mi, s) = civil(self.now());
        let yy = u8::try_from(y.saturating_sub(2000)).unwrap_or(u8::MAX);
        let inn: u64 = self.st.inn.parse().unwrap_or(0);
        let mut inn6 = [0u8; 6];
        inn6.copy_from_slice(&inn.to_le_bytes()[..6]);
        FullStatus {
            operator,
            fw_version: *b"C.",
            fw_build: 1,
            fw_date: [1, 1, 24],
            hall_number: 1,
            document_number: u16::try_from(self.st.last_fd & 0xFFFF).unwrap_or(0),
            flags,
            mode: self.mode_byte(),
            submode,
            port: 0,
            fp_version: *b"FN",
            fp_build: 1,
            fp_date: [1, 1, 24],
            date: [d, mo, yy],
            time: [h, mi, s],
            fp_flags: 0,
            serial: self
                .st
                .kkt_serial
                .parse::<u64>()
                .map_or(0, |v| u32::try_from(v % 1_000_000_000).unwrap_or(0)),
            last_shift: u16::try_from(self.st.shift_number).unwrap_or(u16::MAX),
            free_fp_records: 0,
            registrations: 1,
            registrations_left: 11,
            inn: inn6,
            tail: Vec::new(),
        }
    }

    fn fn_status(&self) -> FnStatus {
        let mut fn_number = [b' '; 16];
        let src = self.st.fn_serial.as_bytes();
        let n = src.len().min(16);
        fn_number[..n].copy_from_slice(&src[..n]);
        let open = self.st.open_receipt.as_ref();
        FnStatus {
            // Bit 0 configured, bit 1 fiscal mode open.
            life_phase: 0b11,
            current_document: if open.is_some() { 4 } else { 0 },
            document_data: u8::from(open.is_some_and(|r| !r.items.is_empty())),
            shift_open: u8::from(self.st.shift_open),
            warnings: 0,
            datetime: datetime5(self.now()),
            fn_number,
            last_fd: self.st.last_fd,
            tail: Vec::new(),
        }
    }

    fn device_info() -> DeviceInfo {
        DeviceInfo {
            device_type: 0,
            subtype: 0,
            protocol_version: 1,
            protocol_subversion: 0,
            model: 0,
            language: 0,
            name: Text::new("ШТРИХ-М-01Ф эмулятор")
                .unwrap_or_else(|_| Text::from_raw(b"SHTRIH-M-01F emulator".to_vec())),
        }
    }

    /// Executes one decoded command. `password` is `None` only for FC.
    pub fn execute(&mut self, c: Conditions, password: Option<u32>, req: &Request) -> Executed {
        let cmd = req.code();
        let operator = match password {
            _ if cmd == CommandCode::DEVICE_TYPE => 0,
            Some(p) => match Self::operator(p) {
                Ok(op) => op,
                Err(e) => return error(cmd, e),
            },
            None => return error(cmd, DeviceError::WrongPassword),
        };
        let before = self.st.last_fd;
        let reply = match self.dispatch(c, operator, req) {
            Ok(answer) => Reply::Ok(answer),
            Err(e) => Reply::Error {
                cmd,
                error: e,
                data: Vec::new(),
            },
        };
        Executed {
            reply,
            committed_fd: (self.st.last_fd != before).then_some(self.st.last_fd),
        }
    }

    fn dispatch(
        &mut self,
        c: Conditions,
        operator: u8,
        req: &Request,
    ) -> Result<Answer, DeviceError> {
        let cmd = req.code();
        crate::text::check(req)?;
        let done = |r: Result<(), DeviceError>| r.map(|()| Answer::Done(cmd));
        let op_done =
            |r: Result<(), DeviceError>| r.map(|()| Answer::OperatorDone { cmd, operator });
        match req {
            Request::ShortStatus => Ok(Answer::ShortStatus(self.short_status(c, operator))),
            Request::FullStatus => Ok(Answer::FullStatus(self.full_status(c, operator))),
            Request::FnStatus => Ok(Answer::FnStatus(self.fn_status())),
            Request::DeviceType => Ok(Answer::DeviceType(Self::device_info())),
            Request::FnShiftParams => Ok(Answer::FnShiftParams(ShiftParams {
                shift_open: u8::from(self.st.shift_open),
                shift_number: u16::try_from(self.st.shift_number).unwrap_or(u16::MAX),
                receipt_number: u16::try_from(self.st.receipts_in_shift).unwrap_or(u16::MAX),
            })),
            Request::FnBeginOpenShift => done(self.begin_open_shift(c)),
            Request::FnOpenShift => self
                .open_shift(c, false)
                .map(|d| Answer::FnOpenShift(shift_answer(d))),
            Request::OpenShift => op_done(self.open_shift(c, true).map(|_| ())),
            Request::FnBeginCloseShift => done(self.begin_close_shift(c)),
            Request::FnCloseShift => self
                .close_shift(c, false)
                .map(|d| Answer::FnCloseShift(shift_answer(d))),
            Request::ZReport => op_done(self.close_shift(c, true).map(|_| ())),
            Request::XReport => op_done(self.x_report(c)),
            Request::PrintString(_) => op_done(Self::print_string(c)),
            Request::FnUnconfirmedCount => Ok(Answer::FnUnconfirmedCount(
                u16::try_from(self.st.unsent().count()).unwrap_or(u16::MAX),
            )),
            Request::OpenReceipt(ty) => op_done(self.open_receipt(c, operator, *ty)),
            Request::FnOperation(op) => done(self.fn_operation(c, operator, op)),
            Request::Sale(item) => op_done(self.legacy_item(c, operator, item, false)),
            Request::ReturnSale(item) => op_done(self.legacy_item(c, operator, item, true)),
            Request::FnSendTlv(tlv) => done(self.send_tlv(tlv)),
            Request::CancelReceipt => op_done(self.cancel()),
            Request::CloseReceipt(r) => self.close_receipt(c, r).map(|d| {
                Answer::CloseReceipt(ReceiptDocument {
                    change: d.change,
                    fd_number: d.fd,
                    fpd: d.fpd,
                })
            }),
            Request::CloseCheck(r) => self.close_check(c, r).map(|d| Answer::CloseCheck {
                operator,
                change: d.change,
            }),
            Request::FnFindDocument { fd_number } => {
                self.find_document(*fd_number).map(Answer::FnFindDocument)
            }
            Request::FnReadDocument { fd_number } => {
                self.read_document(*fd_number).map(Answer::FnReadDocument)
            }
            Request::FnReadDocumentBlock => {
                self.read_document_block().map(Answer::FnReadDocumentBlock)
            }
            Request::FnReadTicket { fd_number } => {
                self.read_ticket(*fd_number).map(Answer::FnReadTicket)
            }
            Request::FnExchangeStatus => Ok(Answer::FnExchangeStatus(self.exchange_status())),
            Request::FnReadBufferStatus => Ok(Answer::FnBufferStatus(self.buffer_status())),
            Request::FnReadBufferBlock { offset, len } => self
                .read_buffer_block(*offset, *len)
                .map(Answer::FnBufferBlock),
            Request::FnStartWriteBuffer { size } => self
                .start_write(*size)
                .map(|block_size_max| Answer::FnStartWriteBuffer { block_size_max }),
            Request::FnWriteBufferBlock { offset, data } => done(self.write_block(*offset, data)),
        }
    }
}

/// An error answer with no data.
pub fn error(cmd: CommandCode, e: DeviceError) -> Executed {
    Executed {
        reply: Reply::Error {
            cmd,
            error: e,
            data: Vec::new(),
        },
        committed_fd: None,
    }
}

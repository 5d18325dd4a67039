//! FN read-back (FF0A, FF3A/FF3B, FF3C) and the OFD exchange through the host (FF39, FF30-FF33).
//!
//! The outgoing message is the `ofd-proto` envelope around the first unacknowledged document, in plaintext:
//! a real FN encrypts the body and appends its message sign, which the emulator cannot and does not do.

use kkt_proto::DeviceError;
use kkt_proto::answer::{BufferStatus, DocumentHeader, ExchangeStatus, FoundDocument};

use crate::clock::datetime5;
use crate::device::Device;
use crate::store::{OfdAck, StoredDoc};

/// Largest block FF31 returns and FF33 accepts.
pub const BLOCK_SIZE_MAX: u8 = 200;
/// Largest block FF3B returns.
pub const DOC_BLOCK_MAX: usize = 200;

/// The envelope a real FN would hand the host for `doc` (plaintext body).
pub fn outgoing_message(fn_serial: &str, doc: &StoredDoc) -> Option<Vec<u8>> {
    let frame = ofd_proto::Frame::new(fn_serial, doc.doc_code, doc.fd, doc.tlv.clone()).ok()?;
    Some(frame.encode())
}

impl Device {
    fn first_unsent(&self) -> Option<&StoredDoc> {
        self.st.unsent().next()
    }

    /// FF39: exchange status.
    pub fn exchange_status(&self) -> ExchangeStatus {
        let queue = self.st.unsent().count();
        let first = self.first_unsent();
        ExchangeStatus {
            // Bit 1: a message for the OFD is waiting; bit 2: waiting for the OFD's ticket.
            status: if queue > 0 { 0b110 } else { 0 },
            read_in_progress: u8::from(self.ofd_in.is_some()),
            queue_len: u16::try_from(queue).unwrap_or(u16::MAX),
            first_fd: first.map_or(0, |d| d.fd),
            first_datetime: first.map_or([0; 5], |d| datetime5(d.time)),
        }
    }

    /// FF30: size of the outgoing message (0 when nothing is queued) and the block limit.
    pub fn buffer_status(&self) -> BufferStatus {
        let size = self
            .first_unsent()
            .and_then(|d| outgoing_message(&self.st.fn_serial, d))
            .map_or(0, |m| u16::try_from(m.len()).unwrap_or(u16::MAX));
        BufferStatus {
            size,
            block_size_max: BLOCK_SIZE_MAX,
        }
    }

    /// FF31: a block of the outgoing message.
    pub fn read_buffer_block(&self, offset: u16, len: u8) -> Result<Vec<u8>, DeviceError> {
        let doc = self.first_unsent().ok_or(DeviceError::FnNoData)?;
        let msg = outgoing_message(&self.st.fn_serial, doc).ok_or(DeviceError::FnFailure)?;
        let start = usize::from(offset);
        let end = start + usize::from(len);
        if len == 0 || len > BLOCK_SIZE_MAX || end > msg.len() {
            return Err(DeviceError::FnBadParameters);
        }
        Ok(msg[start..end].to_vec())
    }

    /// FF32: the host announces the size of the OFD reply it is about to write.
    pub fn start_write(&mut self, size: u16) -> Result<u8, DeviceError> {
        if size == 0 || self.first_unsent().is_none() {
            return Err(DeviceError::FnBadParameters);
        }
        self.ofd_in = Some((usize::from(size), Vec::new()));
        Ok(BLOCK_SIZE_MAX)
    }

    /// FF33: a block of the reply; the last block hands the whole reply to the FN.
    pub fn write_block(&mut self, offset: u16, data: &[u8]) -> Result<(), DeviceError> {
        let Some((size, buf)) = self.ofd_in.as_mut() else {
            return Err(DeviceError::FnWrongState);
        };
        if usize::from(offset) != buf.len() || buf.len() + data.len() > *size || data.is_empty() {
            self.ofd_in = None;
            return Err(DeviceError::FnBadParameters);
        }
        buf.extend_from_slice(data);
        if buf.len() < *size {
            return Ok(());
        }
        let reply = std::mem::take(buf);
        self.ofd_in = None;
        self.accept_reply(&reply)
    }

    /// Checks an OFD reply against the first unacknowledged document and stores it as that document's ticket.
    fn accept_reply(&mut self, reply: &[u8]) -> Result<(), DeviceError> {
        let Some(first) = self.first_unsent() else {
            return Err(DeviceError::OfdMessageRejected);
        };
        let (fd, fn_serial) = (first.fd, self.st.fn_serial.clone());
        let ack = match ofd_proto::parse_reply(reply) {
            Ok((frame, ack))
                if frame.session.fn_number_str().trim() == fn_serial
                    && ack.fn_number == fn_serial
                    && frame.container.fd_number == fd
                    && ack.fd_number == fd =>
            {
                ack
            }
            Ok((frame, ack)) => {
                // Every value compared goes in the log: a header that disagrees with its own body is the
                // OFD's fault, and only the header FD tells that apart from a reply for another document.
                tracing::warn!(
                    expected_fd = fd,
                    expected_fn = %fn_serial,
                    header_fd = frame.container.fd_number,
                    header_fn = %frame.session.fn_number_str().trim(),
                    body_fd = ack.fd_number,
                    body_fn = %ack.fn_number,
                    "OFD reply is for another document"
                );
                return Err(DeviceError::OfdMessageRejected);
            }
            Err(e) => {
                tracing::warn!(error = %e, "OFD reply does not parse");
                return Err(DeviceError::OfdMessageRejected);
            }
        };
        let raw = ack
            .to_tlv()
            .encode()
            .map_err(|_| DeviceError::OfdMessageRejected)?;
        self.commit_ack(
            fd,
            OfdAck {
                response_code: ack.response_code,
                time: ack.date_time,
                operator_sign: ack.operator_sign.unwrap_or_default(),
                raw,
            },
        )
    }

    /// FF0A: finds a document; the data layout follows javapos `FSFindDocument`.
    pub fn find_document(&self, fd: u32) -> Result<FoundDocument, DeviceError> {
        let doc = self.st.doc(fd).ok_or(DeviceError::FnNoData)?;
        let mut data = Vec::with_capacity(19);
        data.extend_from_slice(&datetime5(doc.time));
        data.extend_from_slice(&doc.fd.to_le_bytes());
        data.extend_from_slice(&doc.fpd.to_le_bytes());
        if doc.code() == Some(ofd_proto::DocCode::Receipt) {
            // Receipt: operation type (1) and total (5, kopecks).
            data.push(doc.op_type);
            data.extend_from_slice(&doc.total.to_le_bytes()[..5]);
        } else {
            // Shift reports: shift number (2).
            let shift = u16::try_from(doc.shift).unwrap_or(u16::MAX);
            data.extend_from_slice(&shift.to_le_bytes());
        }
        Ok(FoundDocument {
            doc_type: doc.doc_code,
            ticket_received: u8::from(doc.ack.is_some()),
            data,
        })
    }

    /// FF3A: starts reading a document's TLV.
    pub fn read_document(&mut self, fd: u32) -> Result<DocumentHeader, DeviceError> {
        let doc = self.st.doc(fd).ok_or(DeviceError::FnNoData)?;
        let header = DocumentHeader {
            doc_type: u16::from(doc.doc_code),
            size: u16::try_from(doc.tlv.len()).map_err(|_| DeviceError::FnFailure)?,
        };
        self.doc_read = Some((doc.tlv.clone(), 0));
        Ok(header)
    }

    /// FF3B: the next block of the document FF3A selected.
    pub fn read_document_block(&mut self) -> Result<Vec<u8>, DeviceError> {
        let Some((tlv, pos)) = self.doc_read.as_mut() else {
            return Err(DeviceError::FnWrongState);
        };
        if *pos >= tlv.len() {
            self.doc_read = None;
            return Err(DeviceError::FnNoData);
        }
        let end = (*pos + DOC_BLOCK_MAX).min(tlv.len());
        let block = tlv[*pos..end].to_vec();
        *pos = end;
        Ok(block)
    }

    /// FF3C: the OFD ticket of a document, as the operator-acknowledgement TLV the FN stored.
    pub fn read_ticket(&self, fd: u32) -> Result<Vec<u8>, DeviceError> {
        let doc = self.st.doc(fd).ok_or(DeviceError::FnNoData)?;
        doc.ack
            .as_ref()
            .map(|a| a.raw.clone())
            .ok_or(DeviceError::FnNoData)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use ofd_proto::{Frame, OperatorAck, build_reply};

    use super::*;
    use crate::device::Conditions;
    use crate::store::{FnState, Store};

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A refused reply whose header and body disagree logs both, with what the FN expected.
    #[test]
    fn refused_reply_logs_the_header_and_body_it_compared() {
        let mut dev = Device::new(FnState::fresh(1), Store::memory());
        dev.open_shift(Conditions::default(), true).expect("open");
        let fn_serial = dev.st.fn_serial.clone();
        let doc = dev.st.doc(1).expect("FD 1").clone();
        // The header names FD 1, the body FD 7: the FN checks both.
        let header = Frame::new(&fn_serial, doc.doc_code, 1, doc.tlv).expect("frame");
        let body = OperatorAck {
            ofd_inn: "7704358518".into(),
            fn_number: fn_serial.clone(),
            fd_number: 7,
            date_time: doc.time,
            response_code: 0,
            operator_sign: None,
        };
        let reply = build_reply(&header, &body).expect("reply");
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let refused = tracing::subscriber::with_default(subscriber, || dev.accept_reply(&reply));
        assert_eq!(refused, Err(DeviceError::OfdMessageRejected));
        let log = String::from_utf8(sink.0.lock().expect("log").clone()).expect("utf-8");
        for field in [
            "expected_fd=1".to_string(),
            format!("expected_fn={fn_serial}"),
            "header_fd=1".to_string(),
            format!("header_fn={fn_serial}"),
            "body_fd=7".to_string(),
            format!("body_fn={fn_serial}"),
        ] {
            assert!(log.contains(&field), "{field} missing from {log}");
        }
    }
}

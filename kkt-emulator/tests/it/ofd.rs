//! The OFD exchange through the host: FF39 status, FF30/FF31 read the FN's message, FF32/FF33 write the
//! OFD's reply, FF3C read the stored ticket.

use kkt_proto::{Answer, Request};
use ofd_proto::{Frame, OperatorAck, build_reply, decode_document, parse_message};

use crate::harness::{Emu, Host, T0, close, item};
use crate::shift::read_back;

fn queue(host: &mut Host) -> (u16, u32) {
    let Answer::FnExchangeStatus(s) = host.ok(&Request::FnExchangeStatus) else {
        panic!("FF39")
    };
    (s.queue_len, s.first_fd)
}

/// Reads the FN's outgoing message with FF30/FF31.
fn read_message(host: &mut Host) -> Vec<u8> {
    let Answer::FnBufferStatus(b) = host.ok(&Request::FnReadBufferStatus) else {
        panic!("FF30")
    };
    assert!(b.size > 0 && b.block_size_max > 0);
    let mut msg = Vec::new();
    for _ in 0..1024 {
        let left = usize::from(b.size) - msg.len();
        if left == 0 {
            break;
        }
        let len = u8::try_from(left.min(usize::from(b.block_size_max))).expect("block");
        let offset = u16::try_from(msg.len()).expect("offset");
        let Answer::FnBufferBlock(block) = host.ok(&Request::FnReadBufferBlock { offset, len })
        else {
            panic!("FF31")
        };
        msg.extend_from_slice(&block);
    }
    msg
}

/// Writes a reply with FF32/FF33; returns the error byte of the last block (0 = accepted).
fn write_reply(host: &mut Host, reply: &[u8]) -> u8 {
    let size = u16::try_from(reply.len()).expect("size");
    let Answer::FnStartWriteBuffer { block_size_max } =
        host.ok(&Request::FnStartWriteBuffer { size })
    else {
        panic!("FF32")
    };
    let chunks: Vec<_> = reply.chunks(usize::from(block_size_max)).collect();
    let mut offset = 0usize;
    for (i, chunk) in chunks.iter().enumerate() {
        let req = Request::FnWriteBufferBlock {
            offset: u16::try_from(offset).expect("offset"),
            data: chunk.to_vec(),
        };
        offset += chunk.len();
        if i + 1 < chunks.len() {
            host.ok(&req);
        } else {
            return match host.call(&req) {
                kkt_proto::Reply::Ok(_) => 0,
                kkt_proto::Reply::Error { error, .. } => error.code(),
            };
        }
    }
    unreachable!("a reply has at least one block")
}

fn ack(fn_serial: &str, fd: u32, code: u8) -> OperatorAck {
    OperatorAck {
        ofd_inn: "7704358518".into(),
        fn_number: fn_serial.into(),
        fd_number: fd,
        date_time: T0 + 5,
        response_code: code,
        operator_sign: Some(vec![0xA5; 18]),
    }
}

#[test]
fn message_decodes_to_the_document_and_acks_drain_the_queue() {
    let emu = Emu::start();
    let mut host = emu.host();
    let fn_serial = emu.get("/_emu/state")["fn_serial"]
        .as_str()
        .expect("fn")
        .to_string();
    host.ok(&Request::OpenShift);
    for n in 1..=2u64 {
        host.ok(&item("Tea", 1000, 1_000 * n, 1));
        host.ok(&close(1_000 * n, 0));
    }
    let Answer::FnExchangeStatus(s) = host.ok(&Request::FnExchangeStatus) else {
        panic!("FF39")
    };
    assert_eq!(
        (s.queue_len, s.first_fd, s.first_datetime),
        (3, 1, [23, 11, 14, 22, 13])
    );

    // The message is the envelope of FD 1 whose body is exactly the document's TLV.
    let msg = read_message(&mut host);
    let parsed = parse_message(&msg).expect("envelope parses");
    let doc1 = read_back(&mut host, 1);
    assert_eq!(parsed.frame.body, doc1);
    assert_eq!(parsed.document, decode_document(&doc1).expect("tlv"));
    assert_eq!(
        (
            parsed.frame.container.fd_number,
            parsed.frame.container.doc_type
        ),
        (1, 2)
    );
    assert!(parsed.trailer.is_empty(), "plaintext, no FN message sign");

    // A matching acknowledgement clears FD 1.
    let reply = build_reply(&parsed.frame, &ack(&fn_serial, 1, 0)).expect("reply");
    assert_eq!(write_reply(&mut host, &reply), 0);
    assert_eq!(queue(&mut host), (2, 2));
    let Answer::FnReadTicket(ticket) = host.ok(&Request::FnReadTicket { fd_number: 1 }) else {
        panic!("FF3C")
    };
    let t = OperatorAck::from_tlv(&decode_document(&ticket).expect("ticket tlv")).expect("ack");
    assert_eq!(
        (t.fd_number, t.response_code, t.operator_sign),
        (1, 0, Some(vec![0xA5; 18]))
    );
    let Answer::FnFindDocument(f) = host.ok(&Request::FnFindDocument { fd_number: 1 }) else {
        panic!("FF0A")
    };
    assert_eq!(f.ticket_received, 1);
    assert_eq!(
        host.err(&Request::FnReadTicket { fd_number: 2 }),
        0x08,
        "no ticket yet"
    );

    // A reply for another FD (3 while 2 is first) is refused with 0x20 and the queue stays.
    let other = Frame::new(&fn_serial, 3, 3, read_back(&mut host, 3)).expect("frame");
    let wrong = build_reply(&other, &ack(&fn_serial, 3, 0)).expect("reply");
    assert_eq!(write_reply(&mut host, &wrong), 0x20);
    assert_eq!(queue(&mut host), (2, 2));

    // A corrupt reply and one for another FN are refused the same way.
    let msg2 = parse_message(&read_message(&mut host)).expect("fd 2");
    let mut corrupt = build_reply(&msg2.frame, &ack(&fn_serial, 2, 0)).expect("reply");
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    assert_eq!(write_reply(&mut host, &corrupt), 0x20);
    let forged = build_reply(&msg2.frame, &ack("9999999999999999", 2, 0)).expect("reply");
    assert_eq!(write_reply(&mut host, &forged), 0x20);
    assert_eq!(queue(&mut host), (2, 2));

    // The right one for FD 2, then FD 3 (answered with a format error, still a ticket): the queue empties.
    let reply2 = build_reply(&msg2.frame, &ack(&fn_serial, 2, 0)).expect("reply");
    assert_eq!(write_reply(&mut host, &reply2), 0);
    let msg3 = parse_message(&read_message(&mut host)).expect("fd 3");
    let reply3 = build_reply(
        &msg3.frame,
        &ack(&fn_serial, 3, ofd_proto::RESPONSE_FLK_ERROR),
    )
    .expect("reply");
    assert_eq!(write_reply(&mut host, &reply3), 0);
    assert_eq!(queue(&mut host), (0, 0));
    let Answer::FnBufferStatus(b) = host.ok(&Request::FnReadBufferStatus) else {
        panic!("FF30")
    };
    assert_eq!(b.size, 0);
    let j = emu.get("/_emu/journal");
    assert!(
        j["documents"]
            .as_array()
            .expect("docs")
            .iter()
            .all(|d| d["ofd_acknowledged"] == true)
    );
    assert_eq!(j["documents"][2]["ofd_response_code"], 14);
}

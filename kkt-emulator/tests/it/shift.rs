//! A full shift over the pty: open, three receipts (several lines, cash and card), close, with exact FDs,
//! fiscal signs and read-back documents.

use kkt_proto::{Answer, ReceiptDocument, Request, ShiftDocument};
use ofd_proto::{Receipt, Tlv};

use crate::harness::{Emu, T0, close, item};

/// Reads a document back with FF3A/FF3B.
pub fn read_back(host: &mut crate::harness::Host, fd: u32) -> Vec<u8> {
    let Answer::FnReadDocument(h) = host.ok(&Request::FnReadDocument { fd_number: fd }) else {
        panic!("FF3A answer");
    };
    let mut tlv = Vec::new();
    for _ in 0..64 {
        if tlv.len() >= usize::from(h.size) {
            break;
        }
        let Answer::FnReadDocumentBlock(block) = host.ok(&Request::FnReadDocumentBlock) else {
            panic!("FF3B answer");
        };
        tlv.extend_from_slice(&block);
    }
    assert_eq!(tlv.len(), usize::from(h.size));
    tlv
}

fn tag_1192(id: &str) -> Request {
    Request::FnSendTlv(Tlv::string(1192, id).encode().expect("tlv"))
}

#[test]
fn full_shift_with_exact_fds_and_fiscal_signs() {
    let emu = Emu::start();
    let mut host = emu.host();
    let secret = emu.secret();
    let fn_serial = emu.get("/_emu/state")["fn_serial"]
        .as_str()
        .expect("fn")
        .to_string();
    let sign = |fd: u32, total: u64, op: u8| ofd_proto::fpd(&secret, &fn_serial, fd, T0, total, op);

    assert!(matches!(
        host.ok(&Request::FnBeginOpenShift),
        Answer::Done(_)
    ));
    let Answer::FnOpenShift(open) = host.ok(&Request::FnOpenShift) else {
        panic!("FF0B")
    };
    assert_eq!(
        open,
        ShiftDocument {
            shift_number: 1,
            fd_number: 1,
            fpd: sign(1, 0, 0)
        }
    );

    // Receipt 1: two lines, cash with change. 2 x 150.00 (20 %) + 1.5 x 40.00 (10 %) = 360.00.
    host.ok(&item("Tea", 2000, 15_000, 1));
    host.ok(&item("Bread", 1500, 4_000, 2));
    host.ok(&tag_1192("pos1-000001"));
    let Answer::CloseReceipt(r1) = host.ok(&close(50_000, 0)) else {
        panic!("FF45")
    };
    assert_eq!(
        r1,
        ReceiptDocument {
            change: 14_000,
            fd_number: 2,
            fpd: sign(2, 36_000, 1)
        }
    );

    // Receipt 2: three lines, card only. 99.90 + 3 x 10.00 + 0.250 x 200.00 = 179.90.
    host.ok(&item("Milk", 1000, 9_990, 2));
    host.ok(&item("Gum", 3000, 1_000, 8));
    host.ok(&item("Cheese", 250, 20_000, 1));
    host.ok(&tag_1192("pos1-000002"));
    let Answer::CloseReceipt(r2) = host.ok(&close(0, 17_990)) else {
        panic!("FF45")
    };
    assert_eq!(
        r2,
        ReceiptDocument {
            change: 0,
            fd_number: 3,
            fpd: sign(3, 17_990, 1)
        }
    );

    // Receipt 3: cash and card together. 25000.00 + 2 x 500.00 = 26000.00, card 20000, cash 6000.
    host.ok(&item("Progressive lenses", 1000, 2_500_000, 1));
    host.ok(&item("Frame", 2000, 50_000, 1));
    host.ok(&tag_1192("pos1-000003"));
    let Answer::CloseReceipt(r3) = host.ok(&close(600_000, 2_000_000)) else {
        panic!("FF45")
    };
    assert_eq!(
        r3,
        ReceiptDocument {
            change: 0,
            fd_number: 4,
            fpd: sign(4, 2_600_000, 1)
        }
    );

    host.ok(&Request::FnBeginCloseShift);
    let Answer::FnCloseShift(closed) = host.ok(&Request::FnCloseShift) else {
        panic!("FF43")
    };
    assert_eq!(
        closed,
        ShiftDocument {
            shift_number: 1,
            fd_number: 5,
            fpd: sign(5, 0, 0)
        }
    );

    // Golden signs for seed 1 at T0: a change in the FPD recipe or the FN identity shows up here.
    assert_eq!(
        [open.fpd, r1.fpd, r2.fpd, r3.fpd, closed.fpd],
        GOLDEN_FPDS,
        "fiscal signs of FN seed 1 at T0"
    );

    // FN status and shift parameters agree with the documents.
    let Answer::FnStatus(st) = host.ok(&Request::FnStatus) else {
        panic!("FF01")
    };
    assert_eq!(
        (st.last_fd, st.shift_open, st.fn_number_str()),
        (5, 0, fn_serial.clone())
    );
    let Answer::FnShiftParams(sp) = host.ok(&Request::FnShiftParams) else {
        panic!("FF40")
    };
    assert_eq!(
        (sp.shift_open, sp.shift_number, sp.receipt_number),
        (0, 1, 3)
    );

    // Read-back: FF3A/FF3B give the FFD 1.05 receipt with 1192, totals and payments.
    let r = Receipt::decode(&read_back(&mut host, 4)).expect("receipt decodes");
    assert_eq!(r.properties_data.as_deref(), Some("pos1-000003"));
    assert_eq!(
        (r.total_sum, r.cash_total, r.ecash_total),
        (2_600_000, Some(600_000), Some(2_000_000))
    );
    assert_eq!(
        (r.fiscal.fd_number, r.fiscal.fiscal_sign, r.request_number),
        (4, u64::from(r3.fpd), 3)
    );
    assert_eq!(r.items.len(), 2);

    // FF0A finds receipt 2: type 3, no ticket yet, date, FD, FPD, operation type, total.
    let Answer::FnFindDocument(found) = host.ok(&Request::FnFindDocument { fd_number: 3 }) else {
        panic!("FF0A")
    };
    assert_eq!((found.doc_type, found.ticket_received), (3, 0));
    assert_eq!(&found.data[5..9], &3u32.to_le_bytes());
    assert_eq!(&found.data[9..13], &r2.fpd.to_le_bytes());
    assert_eq!(found.data[13], 1);
    assert_eq!(&found.data[14..19], &17_990u64.to_le_bytes()[..5]);

    // The journal is the same ground truth.
    let j = emu.get("/_emu/journal");
    let docs = j["documents"].as_array().expect("documents");
    let kinds: Vec<_> = docs
        .iter()
        .map(|d| d["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds,
        ["shift_open", "receipt", "receipt", "receipt", "shift_close"]
    );
    assert_eq!(docs[1]["tag_1192"], "pos1-000001");
    assert_eq!(docs[1]["total"], 36_000);
    assert_eq!(docs[1]["change"], 14_000);
    assert_eq!(docs[1]["items"][1]["quantity"], "1.5");
    assert_eq!(docs[3]["fpd"], r3.fpd);
    assert_eq!(docs[3]["ofd_acknowledged"], false);
}

/// FPDs of [`full_shift_with_exact_fds_and_fiscal_signs`], recorded from `ofd_proto::fpd` for FN seed 1.
const GOLDEN_FPDS: [u32; 5] = [
    4_178_259_789,
    2_666_126_454,
    3_725_992_224,
    2_616_717_949,
    862_086_058,
];

#[test]
fn wrong_sequence_and_password_errors_on_the_wire() {
    let emu = Emu::start();
    let mut host = emu.host();
    // No shift: a sale line is refused with 0x3D, a shift close too.
    assert_eq!(host.err(&item("Tea", 1000, 100, 1)), 0x3D);
    assert_eq!(host.err(&Request::FnBeginCloseShift), 0x3D);
    host.ok(&Request::FnBeginOpenShift);
    host.ok(&Request::FnOpenShift);
    host.ok(&item("Tea", 1000, 100, 1));
    // Receipt open: opening a shift or another receipt is refused with 0x4A.
    assert_eq!(
        host.err(&Request::OpenReceipt(kkt_proto::ReceiptType::Sale)),
        0x4A
    );
    assert_eq!(host.err(&Request::FnBeginCloseShift), 0x4A);
    // Wrong password: 0x4F; operator 28 (cashier) is fine.
    assert!(
        matches!(host.call_as(31, &Request::ShortStatus), kkt_proto::Reply::Error { error, .. } if error.code() == 0x4F)
    );
    assert!(
        matches!(host.call_as(28, &Request::ShortStatus), kkt_proto::Reply::Ok(Answer::ShortStatus(s)) if s.operator == 28 && s.mode == 8)
    );
    host.ok(&Request::CancelReceipt);
    // Over 24 h: mode 3, a sale is refused with 0x4E, the shift can still be closed.
    emu.post_ok(
        "/_emu/clock",
        &format!(r#"{{"frozen_unix":{}}}"#, T0 + 25 * 3600),
    );
    let Answer::ShortStatus(s) = host.ok(&Request::ShortStatus) else {
        panic!("10")
    };
    assert_eq!(s.mode, 3);
    assert_eq!(host.err(&item("Tea", 1000, 100, 1)), 0x4E);
    host.ok(&Request::FnBeginCloseShift);
    host.ok(&Request::FnCloseShift);
    assert_eq!(emu.get("/_emu/state")["last_fd"], 2);
}

#[test]
fn legacy_sale_makes_the_same_ffd_documents_and_counters() {
    let emu = Emu::start();
    let mut host = emu.host();
    let secret = emu.secret();
    host.ok(&Request::OpenShift);
    host.ok(&Request::OpenReceipt(kkt_proto::ReceiptType::Sale));
    host.ok(&Request::Sale(kkt_proto::LegacyItem {
        quantity: 2000,
        price: 15_000,
        department: 1,
        taxes: [1, 0, 0, 0],
        text: kkt_proto::Text::padded("Tea", 40).expect("text"),
    }));
    let Answer::CloseCheck { operator, change } =
        host.ok(&Request::CloseCheck(kkt_proto::CloseCheck {
            payments: [40_000, 0, 0, 0],
            discount: 0,
            taxes: [0; 4],
            text: kkt_proto::Text::padded("", 40).expect("text"),
        }))
    else {
        panic!("85")
    };
    assert_eq!((operator, change), (30, 10_000));
    host.ok(&Request::ZReport);
    let j = emu.get("/_emu/journal");
    let fn_serial = j["fn_serial"].as_str().expect("fn").to_string();
    assert_eq!(
        j["documents"][1]["fpd"],
        ofd_proto::fpd(&secret, &fn_serial, 2, T0, 30_000, 1)
    );
    assert_eq!(j["documents"][2]["type"], "shift_close");
    let r = Receipt::decode(&read_back(&mut host, 2)).expect("decodes");
    assert_eq!(
        (r.total_sum, r.items[0].name.as_str(), r.request_number),
        (30_000, "Tea", 1)
    );
    // The FN path continues the same counters.
    let Answer::FnStatus(st) = host.ok(&Request::FnStatus) else {
        panic!("FF01")
    };
    assert_eq!(st.last_fd, 3);
}

//! The protocol self-check: decodes the golden wire vectors of docs/protocols.md (#shtrih-m-golden-frames,
//! #tlv-golden-vectors) with the workspace's protocol crates and re-encodes them, printing one line per
//! vector and the closing tally.
//!
//! It is the main job until the UAT suites run end to end; the unit tests assert the same vectors
//! field by field, this shows a person what the codecs make of real traces.

use kkt_proto::{Reply, Request};
use ofd_proto::tlv::{decode_cp866, encode_cp866, vln_bytes};

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("vector is hex")
}

/// One check: its name and whether it held, with what was seen.
type Outcome = (String, Result<String, String>);

fn request(name: &str, frame: &str) -> Outcome {
    let bytes = hex(frame);
    let result = Request::from_frame(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|(pwd, req)| {
            let again = req.to_frame(pwd.unwrap_or(0)).map_err(|e| e.to_string())?;
            if again == bytes {
                Ok(format!("{req:?}"))
            } else {
                Err(format!("re-encoded as {again:02X?}"))
            }
        });
    (name.to_owned(), result)
}

fn reply(name: &str, frame: &str) -> Outcome {
    let bytes = hex(frame);
    let result = Reply::from_frame(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|rep| {
            let again = rep.to_frame().map_err(|e| e.to_string())?;
            if again == bytes {
                Ok(format!("{rep:?}"))
            } else {
                Err(format!("re-encoded as {again:02X?}"))
            }
        });
    (name.to_owned(), result)
}

fn bytes_equal(name: &str, got: Vec<u8>, want: &str) -> Outcome {
    let want = hex(want);
    let result = if got == want {
        Ok(format!("{got:02X?}"))
    } else {
        Err(format!("got {got:02X?}"))
    };
    (name.to_owned(), result)
}

/// Runs every vector; returns the number that failed.
pub fn run() -> usize {
    let outcomes = vec![
        request(
            "shtrih: short status, password 1",
            "02 05 10 01 00 00 00 14",
        ),
        reply(
            "shtrih: short status answer",
            "02 11 10 00 01 90 00 08 00 00 00 00 00 00 00 FF FF FF 00 67",
        ),
        request(
            "shtrih: open shift E0, password 30",
            "02 05 E0 1E 00 00 00 FB",
        ),
        reply(
            "shtrih: FF45 answer, FD 17884, FPD 289979573",
            "02 10 FF 45 00 00 00 00 00 00 DC 45 00 00 B5 BC 48 11 63",
        ),
        request(
            "shtrih: find FD 1",
            "02 0A FF 0A 1E 00 00 00 01 00 00 00 E0",
        ),
        bytes_equal(
            "ffd: VLN 87892227523633",
            vln_bytes(87_892_227_523_633),
            "31 04 00 01 F0 4F",
        ),
        bytes_equal(
            "ffd: cp866 \"Тест\"",
            encode_cp866(1030, "Тест").unwrap_or_default(),
            "92 A5 E1 E2",
        ),
        (
            "ffd: cp866 decodes back".to_owned(),
            Some(decode_cp866(&hex("92 A5 E1 E2")))
                .filter(|s| s == "Тест")
                .ok_or_else(|| "mismatch".to_owned()),
        ),
    ];
    let mut failed = 0;
    for (name, result) in &outcomes {
        match result {
            Ok(seen) => println!("ok    {name}: {seen}"),
            Err(why) => {
                failed += 1;
                println!("FAIL  {name}: {why}");
            }
        }
    }
    println!("{} passed, {} failed", outcomes.len() - failed, failed);
    failed
}

//! JSON rendering of decoded TLV trees, for humans and for the mock OFD's records (yandex/ofd key names).
//!
//! A document renders as `{"receipt": {"fiscalDocumentNumber": 17, ...}}`. Rules:
//! - integers (Byte, U32, UnixTime, VLN) render as JSON integers, Strings as strings (padding kept),
//!   FVLN as a JSON number (a float, as yandex/ofd does), ByteArray as lower-case hex;
//! - an unknown tag renders as `"tag_NNNN": "<hex>"`;
//! - tags marked repeated in the table (items, properties) are always arrays; any other tag that occurs
//!   more than once also becomes an array, so the rendering never drops data.
//!
//! This is the only place serde appears in the crate; the typed documents carry no serde derives.

use crate::tags::tag_info;
use crate::tlv::{Tlv, Value};
use serde_json::{Map, Value as Json};

/// Renders one TLV (usually a document) as a one-key JSON object.
pub fn to_json(tlv: &Tlv) -> Json {
    children_to_json(std::slice::from_ref(tlv))
}

/// Renders the children of an STLV (or a top-level TLV list) as one JSON object.
pub fn children_to_json(tlvs: &[Tlv]) -> Json {
    // Group by key first, so a key that occurs twice becomes one array in first-seen order.
    let mut groups: Vec<(String, bool, Vec<Json>)> = Vec::new();
    for tlv in tlvs {
        let key = key_for(tlv.tag);
        let value = render_value(&tlv.value);
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, values)) => values.push(value),
            None => {
                let repeated = tag_info(tlv.tag).is_some_and(|i| i.repeated);
                groups.push((key, repeated, vec![value]));
            }
        }
    }
    let mut map = Map::new();
    for (key, repeated, mut values) in groups {
        let json = if repeated || values.len() > 1 {
            Json::Array(values)
        } else {
            values.pop().unwrap_or(Json::Null)
        };
        map.insert(key, json);
    }
    Json::Object(map)
}

/// The JSON key of a tag: its table name, or `tag_NNNN` when the table does not know it.
pub fn key_for(tag: u16) -> String {
    tag_info(tag).map_or_else(|| format!("tag_{tag}"), |i| i.name_json.to_owned())
}

fn render_value(value: &Value) -> Json {
    match value {
        Value::Byte(v) => Json::from(*v),
        Value::U32(v) | Value::UnixTime(v) => Json::from(*v),
        Value::String(s) => Json::from(s.as_str()),
        Value::Vln(v) => Json::from(*v),
        Value::Fvln(f) => serde_json::Number::from_f64(f.to_f64()).map_or(Json::Null, Json::Number),
        Value::ByteArray(b) | Value::Raw(b) => Json::from(hex::encode(b)),
        Value::Stlv(children) => children_to_json(children),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlv::Fvln;
    use serde_json::json;

    #[test]
    fn renders_names_arrays_and_unknown_tags() {
        let doc = Tlv::stlv(
            3,
            vec![
                Tlv::u32(1040, 17),
                Tlv::stlv(
                    1059,
                    vec![
                        Tlv::string(1030, "Чай"),
                        Tlv::fvln(1023, Fvln::new(1500, 3)),
                    ],
                ),
                Tlv::new(4000, Value::Raw(vec![0xde, 0xad])),
                Tlv::bytes(1078, vec![1, 2]),
            ],
        );
        assert_eq!(
            to_json(&doc),
            json!({"receipt": {
                "fiscalDocumentNumber": 17,
                "items": [{"name": "Чай", "quantity": 1.5}],
                "tag_4000": "dead",
                "operatorFiscalSign": "0102",
            }})
        );
    }

    #[test]
    fn duplicate_non_repeated_tag_keeps_every_value() {
        let doc = Tlv::stlv(
            3,
            vec![Tlv::u32(1040, 1), Tlv::u32(1042, 9), Tlv::u32(1040, 2)],
        );
        assert_eq!(
            to_json(&doc),
            json!({"receipt": {"fiscalDocumentNumber": [1, 2], "requestNumber": 9}})
        );
    }
}

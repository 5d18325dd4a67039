//! Deserialization of the tables whose shape depends on their content: steps and checks (by their
//! leading kind key), probes (a request line or a table) and expected values (a literal or a matcher).

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use super::{CHECK_KINDS, Check, Expected, Probe, ProbeTable, STEP_KINDS, Step};

const MATCHER_KEYS: &[&str] = &[
    "gte", "lte", "gt", "lt", "one_of", "type", "eq", "len", "contains",
];

impl<'de> Deserialize<'de> for Expected {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let is_matcher = match &v {
            serde_json::Value::Object(m) => {
                !m.is_empty() && m.keys().all(|k| MATCHER_KEYS.contains(&k.as_str()))
            }
            _ => false,
        };
        if is_matcher {
            serde_json::from_value(v)
                .map(Expected::Matcher)
                .map_err(de::Error::custom)
        } else {
            Ok(Expected::Literal(v))
        }
    }
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Probe;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a request line such as \"GET adapter /v1/health\" or a table with `http` or `sql`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Probe, E> {
                Ok(Probe::Line(s.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Probe, A::Error> {
                ProbeTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Probe::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads the leading key of a step or check table and checks it against the kinds, so an
/// unknown kind is reported at the key itself.
struct LeadSeed {
    kinds: &'static [&'static str],
    what: &'static str,
    allow_name: bool,
}

impl<'de> DeserializeSeed<'de> for LeadSeed {
    type Value = &'static str;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        let key = String::deserialize(d)?;
        if self.allow_name && key == "name" {
            return Ok("name");
        }
        self.kinds.iter().find(|k| **k == key).copied().ok_or_else(|| {
            de::Error::custom(format!(
                "unknown {what} kind `{key}`: a {what} table starts with its kind{name}, one of {}",
                self.kinds.join(", "),
                what = self.what,
                name = if self.allow_name { " (after an optional `name`)" } else { "" },
            ))
        })
    }
}

/// Replays what was already read (an optional `name` and the kind key) in front of the rest of
/// the table, so the variant's struct sees its whole table while its other keys keep their spans.
struct Replay<A> {
    name: Option<String>,
    kind: Option<&'static str>,
    name_pending: bool,
    inner: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Replay<A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if self.name.is_some() && !self.name_pending {
            self.name_pending = true;
            return seed.deserialize("name".into_deserializer()).map(Some);
        }
        match self.kind.take() {
            Some(k) => seed.deserialize(k.into_deserializer()).map(Some),
            None => self.inner.next_key_seed(seed),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        if self.name_pending
            && let Some(n) = self.name.take()
        {
            return seed.deserialize(NameDeserializer(n, std::marker::PhantomData));
        }
        self.inner.next_value_seed(seed)
    }
}

/// Feeds an already-read `name` to an `Option<String>` field.
struct NameDeserializer<E>(String, std::marker::PhantomData<E>);

impl<'de, E: de::Error> de::Deserializer<'de> for NameDeserializer<E> {
    type Error = E;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, E> {
        v.visit_string(self.0)
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, E> {
        v.visit_some(self)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Reads the leading `name` (if allowed) and kind of a step or check table.
fn lead<'de, A: MapAccess<'de>>(
    map: &mut A,
    kinds: &'static [&'static str],
    what: &'static str,
    allow_name: bool,
) -> Result<(Option<String>, &'static str), A::Error> {
    let seed = || LeadSeed {
        kinds,
        what,
        allow_name,
    };
    let Some(first) = map.next_key_seed(seed())? else {
        return Err(de::Error::custom(format!(
            "empty {what}: a {what} table starts with its kind"
        )));
    };
    if first != "name" {
        return Ok((None, first));
    }
    let name: String = map.next_value()?;
    let seed = LeadSeed {
        kinds,
        what,
        allow_name: false,
    };
    match map.next_key_seed(seed)? {
        Some(kind) => Ok((Some(name), kind)),
        None => Err(de::Error::custom(format!(
            "a {what} needs a kind after `name`"
        ))),
    }
}

fn rest<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    name: Option<String>,
    kind: &'static str,
    map: A,
) -> Result<T, A::Error> {
    T::deserialize(de::value::MapAccessDeserializer::new(Replay {
        name,
        kind: Some(kind),
        name_pending: false,
        inner: map,
    }))
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Step;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a step table whose first key is its kind")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                let (name, kind) = lead(&mut map, STEP_KINDS, "step", true)?;
                Ok(match kind {
                    "start" => Step::Start(rest(name, kind, map)?),
                    "stop" => Step::Stop(rest(name, kind, map)?),
                    "kill" => Step::Kill(rest(name, kind, map)?),
                    "pause" => Step::Pause(rest(name, kind, map)?),
                    "resume" => Step::Resume(rest(name, kind, map)?),
                    "http" => Step::Http(rest(name, kind, map)?),
                    "repeat" => Step::Repeat(rest(name, kind, map)?),
                    "wait_until" => Step::WaitUntil(rest(name, kind, map)?),
                    "sql" => Step::Sql(rest(name, kind, map)?),
                    "file" => Step::File(rest(name, kind, map)?),
                    "sleep" => Step::Sleep(rest(name, kind, map)?),
                    "power_cut" => Step::PowerCut(rest(name, kind, map)?),
                    "remount" => Step::Remount(rest(name, kind, map)?),
                    "fs_fail" => Step::FsFail(rest(name, kind, map)?),
                    "heal" => Step::Heal(rest(name, kind, map)?),
                    "crash_at_fsync" => Step::CrashAtFsync(rest(name, kind, map)?),
                    "integrity_check" => Step::IntegrityCheck(rest(name, kind, map)?),
                    "metric" => Step::Metric(rest(name, kind, map)?),
                    _ => Step::Exec(rest(name, kind, map)?),
                })
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Check;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a check table whose first key is its kind")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Check, A::Error> {
                let (_, kind) = lead(&mut map, CHECK_KINDS, "check", false)?;
                Ok(match kind {
                    "exactly_once" => Check::ExactlyOnce(rest(None, kind, map)?),
                    "log_clean" => Check::LogClean(rest(None, kind, map)?),
                    "power_loss" => Check::PowerLoss(rest(None, kind, map)?),
                    _ => Check::Sql(rest(None, kind, map)?),
                })
            }
        }
        d.deserialize_map(V)
    }
}

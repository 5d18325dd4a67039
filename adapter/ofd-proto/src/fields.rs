//! Typed access to the children of a decoded STLV, shared by the typed documents.

use crate::error::DocError;
use crate::tlv::{Fvln, Tlv, Value};

/// Reads children of one STLV by tag, with typed "missing" and "wrong type" errors.
pub(crate) struct Fields<'a>(pub(crate) &'a Tlv);

impl<'a> Fields<'a> {
    /// Checks the outer tag and wraps the document.
    pub(crate) fn document(tlv: &'a Tlv, code: u16) -> Result<Self, DocError> {
        if tlv.tag != code {
            return Err(DocError::WrongDocument {
                expected: code,
                found: tlv.tag,
            });
        }
        Ok(Self(tlv))
    }

    fn get(&self, tag: u16) -> Result<&'a Value, DocError> {
        self.0
            .find(tag)
            .map(|t| &t.value)
            .ok_or(DocError::Missing { tag })
    }

    pub(crate) fn byte(&self, tag: u16) -> Result<u8, DocError> {
        match self.get(tag)? {
            Value::Byte(v) => Ok(*v),
            _ => Err(DocError::WrongType { tag }),
        }
    }

    pub(crate) fn u32(&self, tag: u16) -> Result<u32, DocError> {
        match self.get(tag)? {
            Value::U32(v) | Value::UnixTime(v) => Ok(*v),
            _ => Err(DocError::WrongType { tag }),
        }
    }

    pub(crate) fn vln(&self, tag: u16) -> Result<u64, DocError> {
        match self.get(tag)? {
            Value::Vln(v) => Ok(*v),
            _ => Err(DocError::WrongType { tag }),
        }
    }

    pub(crate) fn fvln(&self, tag: u16) -> Result<Fvln, DocError> {
        match self.get(tag)? {
            Value::Fvln(v) => Ok(*v),
            _ => Err(DocError::WrongType { tag }),
        }
    }

    pub(crate) fn string(&self, tag: u16) -> Result<String, DocError> {
        match self.get(tag)? {
            Value::String(v) => Ok(v.clone()),
            _ => Err(DocError::WrongType { tag }),
        }
    }

    pub(crate) fn bytes(&self, tag: u16) -> Result<Vec<u8>, DocError> {
        match self.get(tag)? {
            Value::ByteArray(v) => Ok(v.clone()),
            _ => Err(DocError::WrongType { tag }),
        }
    }

    /// Turns "missing" into `None` and keeps every other error.
    pub(crate) fn opt<T>(r: Result<T, DocError>) -> Result<Option<T>, DocError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(DocError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Pushes an optional child.
pub(crate) fn push_opt<T>(out: &mut Vec<Tlv>, v: Option<T>, make: impl FnOnce(T) -> Tlv) {
    if let Some(v) = v {
        out.push(make(v));
    }
}

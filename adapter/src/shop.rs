//! The registers behind one adapter: each one's phase-1 service (its own KKT owner thread, link,
//! reconciliation and "outcome unknown" gate) and its phase-2 relay of its own FN, found by id.
//!
//! Invariant: nothing here is shared between registers but the journal and the OFD endpoint's
//! breaker, so one register that is unplugged, out of paper or being reconciled refuses only its
//! own sales while the others keep their full rate.

use std::sync::Arc;

use crate::service::Fiscalizer;
use crate::sync::SyncHandle;

/// One register: its service and its relay.
#[derive(Clone)]
pub struct Register {
    pub fiscalizer: Fiscalizer,
    pub sync: SyncHandle,
}

impl Register {
    /// The register's id (`default` for `--kkt-port`).
    pub fn id(&self) -> &str {
        self.fiscalizer.kkt_id()
    }
}

/// Every register of the adapter, in the configured order; never empty. Cheap to clone.
#[derive(Clone)]
pub struct Shop {
    registers: Arc<Vec<Register>>,
}

/// A register could not be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pick {
    /// No register has this id.
    #[error("no register `{0}` is configured")]
    Unknown(String),
    /// The request named none and the adapter has several.
    #[error("this adapter drives {0} registers; name one with `kkt_id`")]
    Ambiguous(usize),
}

impl Shop {
    /// The shop of `registers`; panics on an empty list (the configuration never gives one).
    pub fn new(registers: Vec<Register>) -> Shop {
        assert!(!registers.is_empty(), "a shop has at least one register");
        Shop {
            registers: Arc::new(registers),
        }
    }

    /// Every register, in the configured order.
    pub fn all(&self) -> &[Register] {
        &self.registers
    }

    /// The register with `id`.
    pub fn get(&self, id: &str) -> Result<&Register, Pick> {
        self.registers
            .iter()
            .find(|r| r.id() == id)
            .ok_or_else(|| Pick::Unknown(id.to_owned()))
    }

    /// The register a request names, or the only one when it names none.
    pub fn pick(&self, id: Option<&str>) -> Result<&Register, Pick> {
        match (id, self.registers.as_slice()) {
            (Some(id), _) => self.get(id),
            (None, [only]) => Ok(only),
            (None, many) => Err(Pick::Ambiguous(many.len())),
        }
    }

    /// Any register, for what is the same from all of them: journal-wide reads and the OFD
    /// endpoint's breaker.
    pub fn any(&self) -> &Register {
        &self.registers[0]
    }
}

//! The one way to reach an owner's rows: every query of owner data takes an
//! `OwnerScope`, which pairs a connection (or transaction) with the owner it acts for,
//! so a query that forgets its owner does not compile. Writes of whole rows carry their
//! owner in the row; the few queries of no owner (API keys, code operation intents, the
//! live tail) say so in their names and docs.

use crate::entities::ids::OwnerId;

/// A connection or transaction acting for one owner. Cheap to copy.
pub struct OwnerScope<'c, C> {
    db: &'c C,
    owner_id: OwnerId,
    /// A timeline horizon its reads may assume (see `horizon::Floor`; 0 assumes none).
    floor: i64,
}

impl<C> Clone for OwnerScope<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for OwnerScope<'_, C> {}

impl<'c, C> OwnerScope<'c, C> {
    pub fn new(db: &'c C, owner_id: OwnerId) -> Self {
        Self {
            db,
            owner_id,
            floor: 0,
        }
    }

    #[must_use]
    pub(super) fn with_floor(self, floor: i64) -> Self {
        Self { floor, ..self }
    }

    /// The horizon floor for timeline reads through this scope.
    pub(super) fn floor(self) -> i64 {
        self.floor
    }

    pub fn owner_id(self) -> OwnerId {
        self.owner_id
    }

    /// The connection and the owner, for the store's own queries.
    pub(super) fn parts(self) -> (&'c C, OwnerId) {
        (self.db, self.owner_id)
    }
}

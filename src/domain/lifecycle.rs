//! Which status changes the API allows (API.md, Lifecycles). The statuses themselves
//! live with the tables in `entities::kinds`; the rules about moving between them are
//! the domain's.

use crate::entities::kinds::{ContractStatus, TaskStatus};

pub trait Lifecycle: Copy {
    /// Whether a status change from `self` to `to` is allowed. Staying in the same
    /// status is handled by the caller (it succeeds with no event).
    fn can_move_to(self, to: Self) -> bool;
}

impl Lifecycle for TaskStatus {
    fn can_move_to(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Pending, Running | Failed)
                | (Running, Paused | Interrupted | Done | Failed)
                | (Paused, Running | Interrupted | Failed)
        )
    }
}

impl Lifecycle for ContractStatus {
    fn can_move_to(self, to: ContractStatus) -> bool {
        use ContractStatus::*;
        matches!(
            (self, to),
            (Active, Completed | Archived) | (Completed, Archived)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_transitions_follow_the_contract() {
        use TaskStatus::*;
        assert!(Pending.can_move_to(Running));
        assert!(!Done.can_move_to(Running));
        assert!(!Interrupted.can_move_to(Running));
        assert!(!Failed.can_move_to(Pending));
        assert!(Paused.can_move_to(Interrupted));
        assert!(!Pending.can_move_to(Done));
    }

    #[test]
    fn contract_transitions_follow_the_contract() {
        use ContractStatus::*;
        assert!(Active.can_move_to(Completed));
        assert!(Completed.can_move_to(Archived));
        assert!(!Archived.can_move_to(Active));
        assert!(!Completed.can_move_to(Active));
    }
}

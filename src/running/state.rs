//! An event source mapping's `State` as Lambda reports it, and the transitions the
//! Lambda API's calls start. Pure: the running set (`super`) decides when a transition
//! ends (the shard tasks stopped, the new ones started).

/// Lambda's `State` values for a stream mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EsmState {
    Creating,
    Enabling,
    Enabled,
    Disabling,
    Disabled,
    Updating,
    Deleting,
}

impl EsmState {
    pub fn as_str(self) -> &'static str {
        match self {
            EsmState::Creating => "Creating",
            EsmState::Enabling => "Enabling",
            EsmState::Enabled => "Enabled",
            EsmState::Disabling => "Disabling",
            EsmState::Disabled => "Disabled",
            EsmState::Updating => "Updating",
            EsmState::Deleting => "Deleting",
        }
    }

    /// Where a mapping rests once a change is over.
    pub fn settled(enabled: bool) -> EsmState {
        if enabled {
            EsmState::Enabled
        } else {
            EsmState::Disabled
        }
    }

    /// A change is under way: another update or a delete must wait (Lambda answers
    /// ResourceConflictException meanwhile).
    pub fn in_transition(self) -> bool {
        !matches!(self, EsmState::Enabled | EsmState::Disabled)
    }

    /// The state an UpdateEventSourceMapping puts a mapping in: `Enabling` or `Disabling`
    /// when it switches the mapping on or off, else `Updating` (as Lambda answers).
    pub fn of_update(was_enabled: bool, enabled: bool) -> EsmState {
        match (was_enabled, enabled) {
            (false, true) => EsmState::Enabling,
            (true, false) => EsmState::Disabling,
            _ => EsmState::Updating,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EsmState::*;
    use super::*;

    #[test]
    fn an_update_that_switches_the_mapping_says_so_and_any_other_is_updating() {
        assert_eq!(EsmState::of_update(false, true), Enabling);
        assert_eq!(EsmState::of_update(true, false), Disabling);
        assert_eq!(EsmState::of_update(true, true), Updating);
        assert_eq!(EsmState::of_update(false, false), Updating);
    }

    #[test]
    fn only_enabled_and_disabled_are_at_rest() {
        let all = [
            Creating, Enabling, Enabled, Disabling, Disabled, Updating, Deleting,
        ];
        let resting: Vec<_> = all.into_iter().filter(|s| !s.in_transition()).collect();
        assert_eq!(resting, vec![Enabled, Disabled]);
        assert_eq!(EsmState::settled(true).as_str(), "Enabled");
        assert_eq!(EsmState::settled(false).as_str(), "Disabled");
    }
}

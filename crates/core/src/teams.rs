//! Who leads whom (`[teams]`): a team lead sees and works the customers of the team's
//! members as well as their own, reads their call lists and reports, and is the manager an
//! overdue follow-up escalates to. One level: a lead's members are the names listed, not
//! the members' own teams.

/// A lead and the members of the lead's team, in the policy's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Teams {
    teams: Vec<Team>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub lead: String,
    pub members: Vec<String>,
}

impl Teams {
    pub fn new(teams: Vec<Team>) -> Teams {
        Teams { teams }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Team> {
        self.teams.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.teams.is_empty()
    }

    /// The lead of the team `member` is in.
    pub fn lead_of(&self, member: &str) -> Option<&str> {
        self.teams
            .iter()
            .find(|t| t.members.iter().any(|m| m == member))
            .map(|t| t.lead.as_str())
    }

    /// The members of the team `lead` leads (empty for anyone else).
    pub fn members_of(&self, lead: &str) -> &[String] {
        self.teams
            .iter()
            .find(|t| t.lead == lead)
            .map_or(&[], |t| t.members.as_slice())
    }

    /// Whether `user` may act for `owner`: it is `owner`, or leads `owner`'s team.
    pub fn covers(&self, user: &str, owner: &str) -> bool {
        user == owner || self.members_of(user).iter().any(|m| m == owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_covers_the_members_and_nobody_else() {
        let teams = Teams::new(vec![
            Team {
                lead: "chen".into(),
                members: vec!["rep01".into(), "rep02".into()],
            },
            Team {
                lead: "liu".into(),
                members: vec!["rep03".into()],
            },
        ]);
        assert!(teams.covers("chen", "rep02"));
        assert!(teams.covers("chen", "chen"));
        assert!(!teams.covers("chen", "rep03"));
        assert!(!teams.covers("rep01", "rep02"));
        assert!(!teams.covers("rep01", "chen"));
        assert_eq!(teams.lead_of("rep03"), Some("liu"));
        assert_eq!(teams.lead_of("chen"), None);
        assert!(teams.members_of("rep01").is_empty());
    }
}

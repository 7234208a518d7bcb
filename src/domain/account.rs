//! People: their role, their name as the school spells it, and their age on a given day.

use chrono::{Datelike, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Student,
    Parent,
    Supervisor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "student" => Some(Role::Student),
            "parent" => Some(Role::Parent),
            "supervisor" => Some(Role::Supervisor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Parent => "parent",
            Role::Supervisor => "supervisor",
        }
    }
}

/// A Dutch name: given name, optional tussenvoegsel ("de", "van der"), family name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    pub given_name: String,
    pub tussenvoegsel: Option<String>,
    pub family_name: String,
}

impl PersonName {
    /// "Jan de Vries": the full name as written in running text.
    pub fn full(&self) -> String {
        match self.tussenvoegsel.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => format!("{} {} {}", self.given_name, t, self.family_name),
            None => format!("{} {}", self.given_name, self.family_name),
        }
    }

    /// "de Vries": the surname as people read it, with its tussenvoegsel. This is the OIDC
    /// `family_name`, so a client that prints `given_name family_name` writes "Jan de Vries";
    /// the bare surname ("Vries", for sorting) and the prefix travel as extra claims.
    pub fn surname(&self) -> String {
        match self.tussenvoegsel.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => format!("{t} {}", self.family_name),
            None => self.family_name.clone(),
        }
    }
}

/// Completed years of age on `on` (a birthday counts from the day itself; 29 February
/// birthdays count from 1 March in non-leap years).
pub fn age_on(birth_date: NaiveDate, on: NaiveDate) -> u32 {
    let mut years = on.year() - birth_date.year();
    if (on.month(), on.day()) < (birth_date.month(), birth_date.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_surname_carries_its_tussenvoegsel() {
        let jan = PersonName {
            given_name: "Jan".into(),
            tussenvoegsel: Some("de".into()),
            family_name: "Vries".into(),
        };
        assert_eq!(jan.surname(), "de Vries");
        assert_eq!(jan.full(), "Jan de Vries");
        let sara = PersonName {
            given_name: "Sara".into(),
            tussenvoegsel: Some(String::new()),
            family_name: "Bakker".into(),
        };
        assert_eq!(sara.surname(), "Bakker");
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn age_turns_on_the_birthday() {
        assert_eq!(age_on(d(2010, 2, 1), d(2026, 1, 31)), 15);
        assert_eq!(age_on(d(2010, 2, 1), d(2026, 2, 1)), 16);
        assert_eq!(age_on(d(2008, 2, 29), d(2026, 2, 28)), 17);
        assert_eq!(age_on(d(2008, 2, 29), d(2026, 3, 1)), 18);
        assert_eq!(age_on(d(2030, 1, 1), d(2026, 1, 1)), 0);
    }

    #[test]
    fn full_name_with_and_without_tussenvoegsel() {
        let jan = PersonName {
            given_name: "Jan".into(),
            tussenvoegsel: Some("de".into()),
            family_name: "Vries".into(),
        };
        assert_eq!(jan.full(), "Jan de Vries");
        let sara = PersonName {
            given_name: "Sara".into(),
            tussenvoegsel: None,
            family_name: "Bakker".into(),
        };
        assert_eq!(sara.full(), "Sara Bakker");
    }
}

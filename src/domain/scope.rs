//! The scopes a partner can ask for, and their explanation in plain Dutch and English.

use std::fmt;

/// A scope this server knows. Order of declaration is the order shown on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    OpenId,
    OfflineAccess,
    Naam,
    Rooster,
    Huiswerk,
    Cijfers,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::OpenId,
        Scope::OfflineAccess,
        Scope::Naam,
        Scope::Rooster,
        Scope::Huiswerk,
        Scope::Cijfers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OpenId => "openid",
            Scope::OfflineAccess => "offline_access",
            Scope::Naam => "naam",
            Scope::Rooster => "rooster",
            Scope::Huiswerk => "huiswerk",
            Scope::Cijfers => "cijfers",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    /// What the person is agreeing to, in plain words.
    pub fn explanation(self, english: bool) -> &'static str {
        match (self, english) {
            (Scope::OpenId, false) => {
                "Bevestigen dat je via de school bent ingelogd (zonder je wachtwoord te delen)."
            }
            (Scope::OpenId, true) => {
                "Confirm that you signed in through the school (without sharing your password)."
            }
            (Scope::OfflineAccess, false) => {
                "Toegang houden als je niet bent ingelogd, tot je de toestemming intrekt."
            }
            (Scope::OfflineAccess, true) => {
                "Keep access while you are not signed in, until you withdraw consent."
            }
            (Scope::Naam, false) => {
                "De naam van de leerling (voornaam, tussenvoegsel en achternaam), zodat de app weet om wie het gaat."
            }
            (Scope::Naam, true) => {
                "The student's name (given name, prefix and family name), so the app knows who it is about."
            }
            (Scope::Rooster, false) => "Het rooster: lessen, lokalen en roosterwijzigingen.",
            (Scope::Rooster, true) => "The timetable: lessons, rooms and timetable changes.",
            (Scope::Huiswerk, false) => "Het huiswerk en de toetsen die in de agenda staan.",
            (Scope::Huiswerk, true) => "Homework and tests in the agenda.",
            (Scope::Cijfers, false) => "De cijfers, zoals de school ze laat zien.",
            (Scope::Cijfers, true) => "Grades, as the school shows them.",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, written space-separated on the wire (RFC 6749 §3.3). A bitset: one bit
/// per [`Scope`], so sets are `Copy`, and intersections and subset tests on the hot path of
/// introspection are single instructions that allocate nothing. Iteration and printing follow
/// the order of declaration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u8);

impl Scope {
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    /// Parse a space-separated list; `Err` carries the first unknown scope.
    pub fn parse(s: &str) -> Result<ScopeSet, String> {
        let mut set = ScopeSet::EMPTY;
        for part in s.split(' ').filter(|p| !p.is_empty()) {
            match Scope::parse(part) {
                Some(scope) => set.insert(scope),
                None => return Err(part.to_string()),
            }
        }
        Ok(set)
    }

    /// Parse a stored value; unknown entries (from a newer version) are dropped.
    pub fn parse_lossy(s: &str) -> ScopeSet {
        s.split(' ').filter_map(Scope::parse).collect()
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    pub fn remove(&mut self, scope: Scope) {
        self.0 &= !scope.bit();
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0 | other.0)
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        let bits = self.0;
        Scope::ALL
            .into_iter()
            .filter(move |scope| bits & scope.bit() != 0)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        let mut set = ScopeSet::EMPTY;
        for scope in iter {
            set.insert(scope);
        }
        set
    }
}

/// On the wire a scope set is its space-separated string, written without an intermediate
/// `String` (RFC 6749 §3.3, RFC 7662 §2.2 `scope`).
impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_in_canonical_order() {
        let set = ScopeSet::parse("huiswerk openid  naam").unwrap();
        assert_eq!(set.to_string(), "openid naam huiswerk");
    }

    #[test]
    fn unknown_scope_is_named() {
        assert_eq!(ScopeSet::parse("openid email"), Err("email".to_string()));
    }

    #[test]
    fn subset_and_union() {
        let a = ScopeSet::parse("openid naam").unwrap();
        let b = ScopeSet::parse("openid naam rooster").unwrap();
        assert!(a.is_subset(&b));
        assert!(!b.is_subset(&a));
        assert_eq!(a.union(&b), b);
        assert_eq!(b.intersection(&a), a);
        assert_eq!(b.len(), 3);
        let mut c = b;
        c.remove(Scope::Naam);
        assert_eq!(c.to_string(), "openid rooster");
        assert!(ScopeSet::EMPTY.is_subset(&a) && ScopeSet::EMPTY.is_empty());
    }

    #[test]
    fn every_scope_has_its_own_bit() {
        let all: ScopeSet = Scope::ALL.into_iter().collect();
        assert_eq!(all.len(), Scope::ALL.len());
        assert_eq!(all.iter().collect::<Vec<_>>(), Scope::ALL.to_vec());
    }
}

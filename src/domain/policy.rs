//! Who may consent to what, and why an authorization is refused. Plain functions of plain
//! data, so the rules can be read and tested without a server: the ages here, the live
//! policy behind every token in [`live`] ([`evaluate`]), and the authorization flow's next
//! step in [`authorization`] ([`next_step`]).

pub mod authorization;
pub mod live;

pub use authorization::{next_step, AuthorizationFacts, ChildIneligible, Step, Subject};
pub use live::{evaluate, Allowed, Audience, Inactive, PolicyFacts, Verdict, Withheld};

/// From 16 a student consents personally (GDPR art. 8 as applied in the Netherlands, UAVG art. 5).
pub const PERSONAL_CONSENT_AGE: u32 = 16;
/// From 18 parents no longer act for the child by default.
pub const MAJORITY_AGE: u32 = 18;

/// What the rules know of a student's age: completed years from the birth date the school
/// registered, or nothing. This is the one place that decides what a missing birth date
/// means: nothing that depends on age is assumed, either way. Such a student is not taken to
/// be 16 (no personal consent), nor under 16 (no parent consents for them), nor under 18 (a
/// parent's earlier consent does not stand), nor 18 (no confirming a parent's consent): until
/// the school records the birth date, nobody consents for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    Known(u32),
    Unknown,
}

impl Age {
    pub fn of(birth_date: Option<chrono::NaiveDate>, today: chrono::NaiveDate) -> Age {
        match birth_date {
            Some(born) => Age::Known(crate::domain::account::age_on(born, today)),
            None => Age::Unknown,
        }
    }

    fn known(self, rule: impl FnOnce(u32) -> bool) -> bool {
        matches!(self, Age::Known(age) if rule(age))
    }

    /// From 16 the student consents personally.
    pub fn may_consent_personally(self) -> bool {
        self.known(student_may_consent_personally)
    }

    /// A parent consents only for a child under 16.
    pub fn parent_may_consent(self) -> bool {
        self.known(parent_may_consent_for)
    }

    /// A parent's earlier consent works until the child turns 18.
    pub fn parent_consent_stands(self) -> bool {
        self.known(parent_consent_stands_for)
    }

    /// 18 or older: grants a parent gave wait for the student's own confirmation.
    pub fn is_adult(self) -> bool {
        self.known(|age| age >= MAJORITY_AGE)
    }

    /// May a parent change (rewrite or withdraw) a grant given by `given_by_role`?
    pub fn parent_may_change(self, given_by_role: &str) -> bool {
        self.known(|age| parent_may_change_grant(given_by_role, age))
    }

    /// The number, for pages that show it.
    pub fn years(self) -> Option<u32> {
        match self {
            Age::Known(age) => Some(age),
            Age::Unknown => None,
        }
    }
}

pub fn student_may_consent_personally(age: u32) -> bool {
    age >= PERSONAL_CONSENT_AGE
}

/// A parent gives (or withdraws) consent only for a child under 16: from 16 the student
/// decides personally and a parent neither consents nor overrides (UAVG art. 5).
pub fn parent_may_consent_for(child_age: u32) -> bool {
    child_age < PERSONAL_CONSENT_AGE
}

/// A consent a parent gave earlier keeps working until the child turns 18; then it stops
/// until the student confirms it.
pub fn parent_consent_stands_for(child_age: u32) -> bool {
    child_age < MAJORITY_AGE
}

/// Who gave a grant, as recorded in `grants.given_by_role`.
pub const GIVEN_BY_STUDENT: &str = "student";
pub const GIVEN_BY_PARENT: &str = "parent";

/// May a parent change (rewrite or withdraw) a grant given by `given_by_role`, about a child of
/// `child_age`? Only what a parent gave, and only while the child is under 16; a decision the
/// student made personally is never a parent's to undo.
pub fn parent_may_change_grant(given_by_role: &str, child_age: u32) -> bool {
    given_by_role == GIVEN_BY_PARENT && parent_may_consent_for(child_age)
}

/// May a new consent given by `new_role` replace the active grant given by `existing_role`?
/// Everything except a parent's consent over the student's own.
pub fn consent_may_replace(existing_role: &str, new_role: &str) -> bool {
    !(existing_role == GIVEN_BY_STUDENT && new_role == GIVEN_BY_PARENT)
}

/// A reason the authorization cannot go ahead. Each one is explained to the person on a page
/// and reported to the partner with the RFC 6749 §4.1.2.1 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Pending, suspended, or outside its validity period.
    PartnerNotAccredited,
    /// The school has not opened (or has closed) its link to this partner.
    LinkClosed,
    /// A scope outside the partner's allowed set.
    ScopeNotAllowed,
    /// A student under 16 cannot consent alone.
    StudentTooYoung,
    /// A parent without a linked child under 16 enrolled at the school.
    NoEligibleChild,
    /// A parent whose linked children are 16 or 17: they decide personally.
    ChildDecides,
    /// Supervisors and other accounts do not consent to partners.
    AccountCannotConsent,
    /// The student is not (or no longer) enrolled at a school.
    NotEnrolled,
}

impl Refusal {
    /// The `error` value sent to the partner (RFC 6749 §4.1.2.1).
    pub fn error_code(self) -> &'static str {
        match self {
            Refusal::PartnerNotAccredited => "unauthorized_client",
            Refusal::ScopeNotAllowed => "invalid_scope",
            _ => "access_denied",
        }
    }

    /// A short `error_description` for the partner's developers (ASCII, RFC 6749 §4.1.2.1).
    pub fn description(self) -> &'static str {
        match self {
            Refusal::PartnerNotAccredited => "client is not accredited",
            Refusal::LinkClosed => "the school has not opened its link to this client",
            Refusal::ScopeNotAllowed => "requested scope is not allowed for this client",
            Refusal::StudentTooYoung => "student under 16 cannot consent; a parent must",
            Refusal::NoEligibleChild => "no linked child for whom this parent may consent",
            Refusal::ChildDecides => "the student is 16 or older and consents personally",
            Refusal::AccountCannotConsent => "this account type cannot consent",
            Refusal::NotEnrolled => "student is not enrolled",
        }
    }

    pub fn title(self, english: bool) -> &'static str {
        match (self, english) {
            (Refusal::PartnerNotAccredited, false) => "Deze app is niet toegelaten",
            (Refusal::PartnerNotAccredited, true) => "This app is not admitted",
            (Refusal::LinkClosed, false) => "Je school heeft deze koppeling niet opengezet",
            (Refusal::LinkClosed, true) => "Your school has not opened this link",
            (Refusal::ScopeNotAllowed, false) => "Deze app vraagt meer dan is toegestaan",
            (Refusal::ScopeNotAllowed, true) => "This app asks for more than it may",
            (Refusal::StudentTooYoung, false) => "Een ouder moet toestemming geven",
            (Refusal::StudentTooYoung, true) => "A parent must give consent",
            (Refusal::NoEligibleChild, false) => {
                "Er is geen kind voor wie je toestemming kunt geven"
            }
            (Refusal::NoEligibleChild, true) => "There is no child you can consent for",
            (Refusal::ChildDecides, false) => "Je kind beslist zelf",
            (Refusal::ChildDecides, true) => "Your child decides personally",
            (Refusal::AccountCannotConsent, false) => {
                "Met dit account kun je geen toestemming geven"
            }
            (Refusal::AccountCannotConsent, true) => "This account cannot give consent",
            (Refusal::NotEnrolled, false) => "Je staat niet (meer) ingeschreven",
            (Refusal::NotEnrolled, true) => "You are not (or no longer) enrolled",
        }
    }

    pub fn explanation(self, english: bool) -> &'static str {
        match (self, english) {
            (Refusal::PartnerNotAccredited, false) => "Alleen geaccrediteerde partners mogen gegevens van leerlingen ontvangen. Deze app heeft (nu) geen geldige accreditatie. Er zijn geen gegevens gedeeld.",
            (Refusal::PartnerNotAccredited, true) => "Only accredited partners may receive student data. This app has no valid accreditation (at the moment). No data was shared.",
            (Refusal::LinkClosed, false) => "De school beslist met welke partners gegevens gedeeld mogen worden. De koppeling met deze app staat dicht. Vraag de school als je denkt dat dit niet klopt. Er zijn geen gegevens gedeeld.",
            (Refusal::LinkClosed, true) => "The school decides which partners may receive data. The link with this app is closed. Ask the school if you think this is wrong. No data was shared.",
            (Refusal::ScopeNotAllowed, false) => "Deze app vraagt om gegevens die zij volgens haar afspraken niet mag ontvangen. Er zijn geen gegevens gedeeld.",
            (Refusal::ScopeNotAllowed, true) => "This app asks for data it is not allowed to receive under its agreement. No data was shared.",
            (Refusal::StudentTooYoung, false) => "Je bent jonger dan 16 jaar. Dan moet een ouder of verzorger de toestemming geven: die logt in met een eigen ouderaccount en kiest jou als kind.",
            (Refusal::StudentTooYoung, true) => "You are under 16. A parent or guardian has to give consent: they sign in with their own parent account and choose you as their child.",
            (Refusal::NoEligibleChild, false) => "Een ouder kan toestemming geven voor een gekoppeld kind jonger dan 16 dat op school staat ingeschreven. Zo'n kind is niet aan dit account gekoppeld.",
            (Refusal::NoEligibleChild, true) => "A parent can consent for a linked child under 16 who is enrolled at school. No such child is linked to this account.",
            (Refusal::ChildDecides, false) => "Vanaf 16 jaar beslist een leerling zelf over toestemming aan apps. Een ouder kan dan geen toestemming geven en een besluit van je kind niet veranderen. Je kind kan zelf inloggen en toestemming geven. Er zijn geen gegevens gedeeld.",
            (Refusal::ChildDecides, true) => "From 16 a student decides personally about consent to apps. A parent can then neither give consent nor change the student's decision. Your child can sign in and consent personally. No data was shared.",
            (Refusal::AccountCannotConsent, false) => "Alleen leerlingen en ouders geven toestemming aan apps. Log in met een leerling- of ouderaccount.",
            (Refusal::AccountCannotConsent, true) => "Only students and parents give consent to apps. Sign in with a student or parent account.",
            (Refusal::NotEnrolled, false) => "Er is geen actieve inschrijving op een school. Apps krijgen dan geen toegang.",
            (Refusal::NotEnrolled, true) => "There is no active enrolment at a school, so apps get no access.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_consent_ages() {
        assert!(!student_may_consent_personally(15));
        assert!(student_may_consent_personally(16));
        assert!(parent_may_consent_for(15));
        assert!(!parent_may_consent_for(16));
        assert!(!parent_may_consent_for(17));
        assert!(parent_consent_stands_for(17));
        assert!(!parent_consent_stands_for(18));
    }

    #[test]
    fn an_unknown_age_assumes_nothing() {
        let unknown = Age::of(None, chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(unknown, Age::Unknown);
        assert!(!unknown.may_consent_personally());
        assert!(!unknown.parent_may_consent());
        assert!(!unknown.parent_consent_stands());
        assert!(!unknown.is_adult());
        assert!(!unknown.parent_may_change(GIVEN_BY_PARENT));
        assert_eq!(unknown.years(), None);
        let fifteen = Age::Known(15);
        assert!(fifteen.parent_may_consent() && fifteen.parent_consent_stands());
        assert!(!fifteen.may_consent_personally() && !fifteen.is_adult());
        let seventeen = Age::Known(17);
        assert!(seventeen.may_consent_personally() && seventeen.parent_consent_stands());
        assert!(!seventeen.parent_may_consent() && !seventeen.is_adult());
        assert!(Age::Known(18).is_adult() && !Age::Known(18).parent_consent_stands());
    }

    #[test]
    fn a_parent_never_overrides_the_student() {
        assert!(parent_may_change_grant(GIVEN_BY_PARENT, 15));
        assert!(!parent_may_change_grant(GIVEN_BY_PARENT, 16));
        assert!(!parent_may_change_grant(GIVEN_BY_STUDENT, 12));
        assert!(!parent_may_change_grant("self", 12));
        assert!(!consent_may_replace(GIVEN_BY_STUDENT, GIVEN_BY_PARENT));
        assert!(consent_may_replace(GIVEN_BY_PARENT, GIVEN_BY_STUDENT));
        assert!(consent_may_replace(GIVEN_BY_PARENT, GIVEN_BY_PARENT));
        assert!(consent_may_replace(GIVEN_BY_STUDENT, GIVEN_BY_STUDENT));
    }

    #[test]
    fn refusal_codes_follow_rfc6749() {
        assert_eq!(
            Refusal::PartnerNotAccredited.error_code(),
            "unauthorized_client"
        );
        assert_eq!(Refusal::LinkClosed.error_code(), "access_denied");
        assert_eq!(Refusal::ScopeNotAllowed.error_code(), "invalid_scope");
    }
}

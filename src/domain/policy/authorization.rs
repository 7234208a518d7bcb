//! The authorization flow's next step as a domain type: log in, ask consent, refuse with a
//! reason, or issue a code. [`next_step`] decides from gathered facts, without I/O; the web
//! layer (`flow`) maps each step to a page or a redirect. Modelled on kanidm's
//! `AuthoriseResponse::{AuthenticationRequired, ConsentRequested, Permitted}`.

use chrono::{DateTime, NaiveDate, Utc};

use super::live::ClientFacts;
use super::{Age, Refusal};
use crate::domain::account::Role;
use crate::domain::scope::ScopeSet;

/// Why a parent cannot consent for one of their children (shown next to the child's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildIneligible {
    /// The school has no birth date: whether a parent may act cannot be established.
    AgeUnknown,
    Adult,
    /// 16 or 17: the student decides personally (UAVG art. 5).
    DecidesPersonally,
    NotEnrolled,
    LinkClosed,
}

/// A student the consent would be about: the person logged in, or a parent's child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StudentFacts {
    pub birth_date: Option<NaiveDate>,
    /// Enrolled at a school now (`domain::policy::active_school`).
    pub enrolled: bool,
    /// That school has opened its link to the client.
    pub link_open: bool,
    /// The scopes of the student's active grant to this client, if there is one.
    pub grant_scopes: Option<ScopeSet>,
}

/// The account logged in on this browser session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountFacts<'a> {
    pub role: Option<Role>,
    pub school: &'a str,
}

/// What the next step depends on.
#[derive(Debug, Clone)]
pub struct AuthorizationFacts<'a> {
    /// `None`: nobody is logged in on this browser.
    pub account: Option<AccountFacts<'a>>,
    /// `prompt=login`, not yet answered by a new login.
    pub force_login: bool,
    /// `acr_values=tenant:<BRIN>`: the school the app asked for.
    pub school_hint: Option<&'a str>,
    pub client: ClientFacts,
    pub requested: ScopeSet,
    /// An existing grant that covers the request may skip the consent page: not for
    /// `prompt=consent`, and not when the consent form itself is being answered.
    pub may_skip_consent: bool,
    /// The logged-in student (for a student account).
    pub own: Option<StudentFacts>,
    /// The logged-in parent's children, in the order they are shown.
    pub children: &'a [StudentFacts],
}

/// Who the code is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The student who logged in.
    Myself,
    /// `children[i]` of the facts; the parent who logged in acts for them.
    Child(usize),
}

/// Where the flow goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Login,
    Refuse(Refusal),
    /// Ask consent. For a parent, one entry per child (as in the facts): `None` for a child
    /// the parent may choose, else why not.
    Consent {
        children: Vec<Option<ChildIneligible>>,
    },
    /// An active grant covers the request: issue a code under it, without a page.
    Issue(Subject),
    /// The school's own app: no consent; the token is about the person who logged in.
    IssueFirstParty,
}

/// Why a parent may not consent for this child, if they may not.
pub fn child_ineligible(child: &StudentFacts, today: NaiveDate) -> Option<ChildIneligible> {
    let age = Age::of(child.birth_date, today);
    if age == Age::Unknown {
        Some(ChildIneligible::AgeUnknown)
    } else if age.is_adult() {
        Some(ChildIneligible::Adult)
    } else if !age.parent_may_consent() {
        Some(ChildIneligible::DecidesPersonally)
    } else if !child.enrolled {
        Some(ChildIneligible::NotEnrolled)
    } else if !child.link_open {
        Some(ChildIneligible::LinkClosed)
    } else {
        None
    }
}

fn covers(student: &StudentFacts, requested: &ScopeSet) -> bool {
    student
        .grant_scopes
        .is_some_and(|granted| requested.is_subset(&granted))
}

/// The next step of the authorization flow.
pub fn next_step(facts: &AuthorizationFacts<'_>, now: DateTime<Utc>) -> Step {
    let Some(account) = facts.account else {
        return Step::Login;
    };
    if facts.force_login || facts.school_hint.is_some_and(|brin| brin != account.school) {
        return Step::Login;
    }
    // Accreditation is checked again: it may have been suspended while the person logged in.
    if !facts.client.is_admitted_at(now) {
        return Step::Refuse(Refusal::PartnerNotAccredited);
    }
    let today = now.date_naive();

    if facts.client.first_party {
        return match (account.role, facts.own) {
            (Some(Role::Student), Some(own)) if !own.enrolled => Step::Refuse(Refusal::NotEnrolled),
            (Some(Role::Student), None) => Step::Refuse(Refusal::NotEnrolled),
            (Some(Role::Student | Role::Parent), _) => Step::IssueFirstParty,
            _ => Step::Refuse(Refusal::AccountCannotConsent),
        };
    }

    match account.role {
        Some(Role::Student) => {
            let Some(own) = facts.own.filter(|own| own.enrolled) else {
                return Step::Refuse(Refusal::NotEnrolled);
            };
            if !own.link_open {
                return Step::Refuse(Refusal::LinkClosed);
            }
            // A grant the student (or, before 16, a parent) gave still covers the request.
            if facts.may_skip_consent && covers(&own, &facts.requested) {
                return Step::Issue(Subject::Myself);
            }
            if !Age::of(own.birth_date, today).may_consent_personally() {
                return Step::Refuse(Refusal::StudentTooYoung);
            }
            Step::Consent {
                children: Vec::new(),
            }
        }
        Some(Role::Parent) => {
            let children: Vec<Option<ChildIneligible>> = facts
                .children
                .iter()
                .map(|child| child_ineligible(child, today))
                .collect();
            let eligible: Vec<usize> = (0..children.len())
                .filter(|&i| children[i].is_none())
                .collect();
            if eligible.is_empty() {
                let any = |why| children.contains(&Some(why));
                // A child of 16 or 17 decides personally: say so rather than "no child".
                return Step::Refuse(if any(ChildIneligible::DecidesPersonally) {
                    Refusal::ChildDecides
                } else if any(ChildIneligible::LinkClosed) {
                    Refusal::LinkClosed
                } else {
                    Refusal::NoEligibleChild
                });
            }
            // With one child there is nothing to choose; with several the parent must say
            // whom the app is for, so the page is shown.
            if let [only] = eligible[..] {
                if facts.may_skip_consent && covers(&facts.children[only], &facts.requested) {
                    return Step::Issue(Subject::Child(only));
                }
            }
            Step::Consent { children }
        }
        Some(Role::Supervisor) | None => Step::Refuse(Refusal::AccountCannotConsent),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::partner::{Accreditation, AccreditationStatus};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn aged(years: i32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2026 - years, 6, 1)
    }

    fn student(years: Option<i32>) -> StudentFacts {
        StudentFacts {
            birth_date: years.and_then(aged),
            enrolled: true,
            link_open: true,
            grant_scopes: None,
        }
    }

    fn partner() -> ClientFacts {
        ClientFacts {
            first_party: false,
            deactivated: false,
            accreditation: Accreditation {
                status: AccreditationStatus::Accredited,
                valid_from: None,
                valid_until: None,
            },
        }
    }

    fn facts<'a>(
        role: Role,
        own: Option<StudentFacts>,
        children: &'a [StudentFacts],
    ) -> AuthorizationFacts<'a> {
        AuthorizationFacts {
            account: Some(AccountFacts {
                role: Some(role),
                school: "12AB",
            }),
            force_login: false,
            school_hint: None,
            client: partner(),
            requested: ScopeSet::parse("openid rooster").unwrap(),
            may_skip_consent: true,
            own,
            children,
        }
    }

    fn step(f: &AuthorizationFacts<'_>) -> Step {
        next_step(f, now())
    }

    #[test]
    fn login_comes_first() {
        let mut f = facts(Role::Student, Some(student(Some(16))), &[]);
        f.account = None;
        assert_eq!(step(&f), Step::Login);
        let mut f = facts(Role::Student, Some(student(Some(16))), &[]);
        f.force_login = true;
        assert_eq!(step(&f), Step::Login);
        f.force_login = false;
        f.school_hint = Some("34CD");
        assert_eq!(step(&f), Step::Login, "another school was asked for");
        f.school_hint = Some("12AB");
        assert!(matches!(step(&f), Step::Consent { .. }));
    }

    #[test]
    fn a_student_of_sixteen_consents_and_a_younger_one_is_sent_to_a_parent() {
        let consent = Step::Consent { children: vec![] };
        assert_eq!(
            step(&facts(Role::Student, Some(student(Some(16))), &[])),
            consent
        );
        assert_eq!(
            step(&facts(Role::Student, Some(student(Some(15))), &[])),
            Step::Refuse(Refusal::StudentTooYoung)
        );
        assert_eq!(
            step(&facts(Role::Student, Some(student(None)), &[])),
            Step::Refuse(Refusal::StudentTooYoung),
            "no birth date: no personal consent"
        );
        let mut left = student(Some(16));
        left.enrolled = false;
        assert_eq!(
            step(&facts(Role::Student, Some(left), &[])),
            Step::Refuse(Refusal::NotEnrolled)
        );
        let mut closed = student(Some(16));
        closed.link_open = false;
        assert_eq!(
            step(&facts(Role::Student, Some(closed), &[])),
            Step::Refuse(Refusal::LinkClosed)
        );
    }

    #[test]
    fn a_covering_grant_skips_the_page_unless_consent_is_asked_for() {
        let mut own = student(Some(14));
        own.grant_scopes = Some(ScopeSet::parse("openid rooster huiswerk").unwrap());
        let mut f = facts(Role::Student, Some(own), &[]);
        // A 14-year-old under a parent's grant signs in to the app themselves.
        assert_eq!(step(&f), Step::Issue(Subject::Myself));
        f.requested = ScopeSet::parse("openid cijfers").unwrap();
        assert_eq!(
            step(&f),
            Step::Refuse(Refusal::StudentTooYoung),
            "not covered"
        );
        f.requested = ScopeSet::parse("openid").unwrap();
        f.may_skip_consent = false;
        assert_eq!(step(&f), Step::Refuse(Refusal::StudentTooYoung));
    }

    #[test]
    fn a_parent_chooses_among_children_under_sixteen() {
        let mut closed = student(Some(12));
        closed.link_open = false;
        let mut away = student(Some(12));
        away.enrolled = false;
        let children = [
            student(Some(12)),
            student(Some(17)),
            student(Some(19)),
            student(None),
            closed,
            away,
        ];
        assert_eq!(
            step(&facts(Role::Parent, None, &children)),
            Step::Consent {
                children: vec![
                    None,
                    Some(ChildIneligible::DecidesPersonally),
                    Some(ChildIneligible::Adult),
                    Some(ChildIneligible::AgeUnknown),
                    Some(ChildIneligible::LinkClosed),
                    Some(ChildIneligible::NotEnrolled),
                ]
            }
        );
        let refused = |children: &[StudentFacts]| step(&facts(Role::Parent, None, children));
        assert_eq!(refused(&children[1..]), Step::Refuse(Refusal::ChildDecides));
        assert_eq!(refused(&children[2..]), Step::Refuse(Refusal::LinkClosed));
        assert_eq!(
            refused(&children[5..]),
            Step::Refuse(Refusal::NoEligibleChild)
        );
        assert_eq!(refused(&[]), Step::Refuse(Refusal::NoEligibleChild));
    }

    #[test]
    fn one_eligible_child_with_a_covering_grant_skips_the_page() {
        let mut covered = student(Some(12));
        covered.grant_scopes = Some(ScopeSet::parse("openid rooster").unwrap());
        let children = [student(Some(17)), covered];
        assert_eq!(
            step(&facts(Role::Parent, None, &children)),
            Step::Issue(Subject::Child(1))
        );
        let two = [covered, student(Some(13))];
        assert!(matches!(
            step(&facts(Role::Parent, None, &two)),
            Step::Consent { .. }
        ));
    }

    #[test]
    fn accreditation_and_account_type_are_checked() {
        let mut f = facts(Role::Student, Some(student(Some(16))), &[]);
        f.client.accreditation.status = AccreditationStatus::Suspended;
        assert_eq!(step(&f), Step::Refuse(Refusal::PartnerNotAccredited));
        let f = facts(Role::Supervisor, None, &[]);
        assert_eq!(step(&f), Step::Refuse(Refusal::AccountCannotConsent));
    }

    #[test]
    fn the_school_own_app_needs_no_consent() {
        let mut f = facts(Role::Student, Some(student(Some(12))), &[]);
        f.client.first_party = true;
        f.may_skip_consent = false;
        assert_eq!(step(&f), Step::IssueFirstParty);
        let mut away = student(Some(12));
        away.enrolled = false;
        f.own = Some(away);
        assert_eq!(step(&f), Step::Refuse(Refusal::NotEnrolled));
        let mut parent = facts(Role::Parent, None, &[]);
        parent.client.first_party = true;
        assert_eq!(step(&parent), Step::IssueFirstParty);
        let mut supervisor = facts(Role::Supervisor, None, &[]);
        supervisor.client.first_party = true;
        assert_eq!(
            step(&supervisor),
            Step::Refuse(Refusal::AccountCannotConsent)
        );
    }

    fn student_facts() -> impl Strategy<Value = StudentFacts> {
        (
            proptest::option::weighted(0.9, 10i32..=20),
            proptest::bool::weighted(0.9),
            proptest::bool::weighted(0.8),
            proptest::option::of(0u8..64),
        )
            .prop_map(|(years, enrolled, link_open, grant)| StudentFacts {
                birth_date: years.and_then(aged),
                enrolled,
                link_open,
                grant_scopes: grant.map(|bits| {
                    crate::domain::scope::Scope::ALL
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| bits & (1 << i) != 0)
                        .map(|(_, s)| s)
                        .collect()
                }),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// A parent never gets a code or a choice for a child who is not under 16, enrolled,
        /// and at a school with an open link; a code skips the page only under a grant that
        /// covers everything requested.
        #[test]
        fn a_parent_acts_only_for_an_eligible_child(
            children in proptest::collection::vec(student_facts(), 0..4),
            skip in any::<bool>(),
        ) {
            let mut f = facts(Role::Parent, None, &children);
            f.may_skip_consent = skip;
            match step(&f) {
                Step::Issue(Subject::Child(i)) => {
                    let child = &children[i];
                    prop_assert!(skip);
                    prop_assert_eq!(child_ineligible(child, now().date_naive()), None);
                    prop_assert!(f.requested.is_subset(&child.grant_scopes.unwrap()));
                }
                Step::Consent { children: lines } => {
                    prop_assert_eq!(lines.len(), children.len());
                    prop_assert!(lines.iter().any(Option::is_none));
                    for (line, child) in lines.iter().zip(&children) {
                        prop_assert_eq!(*line, child_ineligible(child, now().date_naive()));
                    }
                }
                Step::Refuse(_) => {
                    prop_assert!(children.iter().all(|c| child_ineligible(c, now().date_naive()).is_some()));
                }
                other => prop_assert!(false, "unexpected step {:?}", other),
            }
        }

        /// A student is never asked for consent (or given a code) without an enrolment and
        /// an open link; a consent page only from 16.
        #[test]
        fn a_student_needs_an_open_link_and_sixteen_years_to_consent(own in student_facts(), skip in any::<bool>()) {
            let mut f = facts(Role::Student, Some(own), &[]);
            f.may_skip_consent = skip;
            match step(&f) {
                Step::Issue(Subject::Myself) => prop_assert!(own.enrolled && own.link_open && skip),
                Step::Consent { .. } => {
                    prop_assert!(own.enrolled && own.link_open);
                    prop_assert!(Age::of(own.birth_date, now().date_naive()).may_consent_personally());
                }
                Step::Refuse(_) => {}
                other => prop_assert!(false, "unexpected step {:?}", other),
            }
        }
    }
}

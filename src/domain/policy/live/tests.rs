//! `evaluate`: each rule on its own, then its invariants over generated facts (proptest).

use chrono::{Duration, NaiveDate, TimeZone};
use proptest::prelude::*;

use super::*;
use crate::domain::partner::AccreditationStatus;

const PARENT: &str = "parent-1";
const OTHER_PARENT: &str = "parent-2";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn at(days: i64) -> i64 {
    (now() + Duration::days(days)).timestamp()
}

fn school() -> Arc<str> {
    Arc::from("12AB")
}

/// Owned facts; [`World::facts`] borrows them the way the gatherer does.
#[derive(Debug, Clone)]
struct World {
    token: Option<(ScopeSet, Option<&'static str>, bool, i64)>,
    grant: Option<(ScopeSet, Option<&'static str>, bool, i64, bool)>,
    client: Option<ClientFacts>,
    subject: Option<(Option<Role>, Option<NaiveDate>)>,
    home_school: String,
    enrollments: Vec<Enrollment>,
    link_open: bool,
    guardians: [Option<(&'static str, bool)>; 2],
    closures: Vec<Closure>,
}

fn accredited() -> ClientFacts {
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

fn all_scopes() -> ScopeSet {
    Scope::ALL.into_iter().collect()
}

fn born(years_ago: i32) -> Option<NaiveDate> {
    // Born on 1 June, `years_ago` years before 2026: that old on `now()` (1 December).
    NaiveDate::from_ymd_opt(2026 - years_ago, 6, 1)
}

/// A student of 14 enrolled at 12AB, whose parent consented to a partner with an open link.
fn parent_consent() -> World {
    World {
        token: Some((all_scopes(), Some(PARENT), false, at(1))),
        grant: Some((all_scopes(), Some(PARENT), false, at(30), true)),
        client: Some(accredited()),
        subject: Some((Some(Role::Student), born(14))),
        home_school: "12AB".into(),
        enrollments: vec![Enrollment {
            school_brin: school(),
            starts_at: at(-100),
            ends_at: None,
        }],
        link_open: true,
        guardians: [Some((PARENT, true)), None],
        closures: Vec::new(),
    }
}

/// The student's own consent (16 or older).
fn own_consent() -> World {
    let mut world = parent_consent();
    world.token = Some((all_scopes(), None, false, at(1)));
    world.grant = Some((all_scopes(), None, false, at(30), true));
    world.subject = Some((Some(Role::Student), born(17)));
    world.guardians = [None, None];
    world
}

impl World {
    fn facts(&self) -> PolicyFacts<'_> {
        PolicyFacts {
            credential: self
                .token
                .map(|(scopes, actor, revoked, expires_at)| Credential {
                    client_id: "partner",
                    scopes,
                    actor,
                    revoked,
                    expires_at,
                }),
            grant: self
                .grant
                .map(
                    |(scopes, parent, revoked, expires_at, same_client)| GrantFacts {
                        client_id: if same_client { "partner" } else { "other" },
                        scopes,
                        given_by_parent: parent,
                        revoked,
                        expires_at,
                    },
                ),
            client: self.client.clone(),
            subject: self.subject.map(|(role, birth_date)| SubjectFacts {
                role,
                home_school: &self.home_school,
                birth_date,
            }),
            enrollments: &self.enrollments,
            link_open: self.link_open,
            guardians: self.guardians,
            closures: &self.closures,
        }
    }

    fn verdict(&self) -> Verdict {
        evaluate(&self.facts(), now())
    }

    fn refused(&self) -> Option<Inactive> {
        match self.verdict() {
            Verdict::Inactive(reason) => Some(reason),
            Verdict::Active(_) => None,
        }
    }

    fn allowed(&self) -> Allowed {
        match self.verdict() {
            Verdict::Active(allowed) => allowed,
            Verdict::Inactive(reason) => panic!("expected active, got {reason:?}"),
        }
    }
}

fn closure(scope: Scope, audiences: &[Audience], from: i64, to: i64) -> Closure {
    Closure {
        scope,
        audiences: audiences.to_vec(),
        starts_at: from,
        ends_at: to,
        reason: Arc::from("toetsweek"),
    }
}

#[test]
fn a_live_parent_consent_is_active_for_the_partner_audience() {
    let allowed = parent_consent().allowed();
    assert_eq!(allowed.scopes, all_scopes());
    assert_eq!(allowed.granted, all_scopes());
    assert!(allowed.withheld.is_empty());
    assert_eq!(&*allowed.school, "12AB");
    assert_eq!(allowed.audience, Audience::Partners);
    assert!(!allowed.first_party);
    assert!(own_consent().allowed().withheld.is_empty());
}

#[test]
fn each_rule_refuses_on_its_own() {
    type Change = fn(&mut World);
    let cases: [(&str, Change, Inactive); 19] = [
        ("no token", |w| w.token = None, Inactive::UnknownToken),
        (
            "revoked token",
            |w| w.token.as_mut().unwrap().2 = true,
            Inactive::Revoked,
        ),
        (
            "expired token",
            |w| w.token.as_mut().unwrap().3 = at(0),
            Inactive::Expired,
        ),
        ("no grant", |w| w.grant = None, Inactive::GrantWithdrawn),
        (
            "withdrawn grant",
            |w| w.grant.as_mut().unwrap().2 = true,
            Inactive::GrantWithdrawn,
        ),
        (
            "expired grant",
            |w| w.grant.as_mut().unwrap().3 = at(-1),
            Inactive::GrantWithdrawn,
        ),
        (
            "grant of another client",
            |w| w.grant.as_mut().unwrap().4 = false,
            Inactive::GrantWithdrawn,
        ),
        (
            "no client",
            |w| w.client = None,
            Inactive::PartnerNotAccredited,
        ),
        (
            "suspended",
            |w| w.client.as_mut().unwrap().accreditation.status = AccreditationStatus::Suspended,
            Inactive::PartnerNotAccredited,
        ),
        (
            "pending",
            |w| w.client.as_mut().unwrap().accreditation.status = AccreditationStatus::Pending,
            Inactive::PartnerNotAccredited,
        ),
        (
            "accreditation lapsed",
            |w| w.client.as_mut().unwrap().accreditation.valid_until = Some(now()),
            Inactive::PartnerNotAccredited,
        ),
        (
            "accreditation not yet started",
            |w| {
                w.client.as_mut().unwrap().accreditation.valid_from =
                    Some(now() + Duration::seconds(1))
            },
            Inactive::PartnerNotAccredited,
        ),
        (
            "deactivated",
            |w| w.client.as_mut().unwrap().deactivated = true,
            Inactive::PartnerNotAccredited,
        ),
        ("no subject", |w| w.subject = None, Inactive::UnknownSubject),
        (
            "left school",
            |w| w.enrollments[0].ends_at = Some(at(0)),
            Inactive::NotEnrolled,
        ),
        ("link closed", |w| w.link_open = false, Inactive::LinkClosed),
        (
            "guardianship ended",
            |w| w.guardians[0] = Some((PARENT, false)),
            Inactive::GuardianshipEnded,
        ),
        (
            "child turned 18",
            |w| w.subject.as_mut().unwrap().1 = born(18),
            Inactive::ChildCameOfAge,
        ),
        (
            "birth date unknown",
            |w| w.subject.as_mut().unwrap().1 = None,
            Inactive::ChildCameOfAge,
        ),
    ];
    for (what, change, expected) in cases {
        let mut world = parent_consent();
        change(&mut world);
        assert_eq!(world.refused(), Some(expected), "{what}");
    }
}

#[test]
fn the_student_own_consent_needs_no_guardian_and_survives_coming_of_age() {
    let mut world = own_consent();
    world.subject = Some((Some(Role::Student), born(19)));
    assert!(world.refused().is_none());
    // Without a birth date the student's own grant still stands: nobody else's consent is
    // involved, and the grant was given when the school's records allowed it.
    world.subject = Some((Some(Role::Student), None));
    assert!(world.refused().is_none());
}

#[test]
fn the_parent_on_the_token_must_be_linked_too() {
    // A grant the student gave, used through the other parent's login.
    let mut world = own_consent();
    world.token.as_mut().unwrap().1 = Some(OTHER_PARENT);
    assert_eq!(
        world.refused(),
        Some(Inactive::GuardianshipEnded),
        "not listed"
    );
    world.guardians = [None, Some((OTHER_PARENT, true))];
    assert!(world.refused().is_none());
    world.guardians = [None, Some((OTHER_PARENT, false))];
    assert_eq!(world.refused(), Some(Inactive::GuardianshipEnded));
    // Another parent's guardianship does not stand in for this one.
    world.guardians = [Some((PARENT, true)), None];
    assert_eq!(world.refused(), Some(Inactive::GuardianshipEnded));
}

#[test]
fn the_latest_running_enrolment_names_the_school() {
    let mut world = parent_consent();
    world.enrollments.push(Enrollment {
        school_brin: Arc::from("34CD"),
        starts_at: at(-1),
        ends_at: None,
    });
    assert_eq!(&*world.allowed().school, "34CD");
    world.enrollments.push(Enrollment {
        school_brin: Arc::from("56EF"),
        starts_at: at(1),
        ends_at: None,
    });
    assert_eq!(&*world.allowed().school, "34CD", "not started yet");
    world.enrollments.clear();
    assert_eq!(world.refused(), Some(Inactive::NotEnrolled));
}

#[test]
fn the_school_own_app_has_no_link_consent_or_guardian() {
    let mut world = own_consent();
    world.client.as_mut().unwrap().first_party = true;
    world.link_open = false;
    let allowed = world.allowed();
    assert_eq!(allowed.audience, Audience::Students);
    assert!(allowed.first_party);
    world.enrollments.clear();
    assert_eq!(world.refused(), Some(Inactive::NotEnrolled));

    // A parent in the school's own app: their own school, the parents' audience.
    let mut parent = world.clone();
    parent.subject = Some((Some(Role::Parent), None));
    parent.home_school = "34CD".into();
    let allowed = parent.allowed();
    assert_eq!(
        (&*allowed.school, allowed.audience),
        ("34CD", Audience::Parents)
    );

    let mut supervisor = world.clone();
    supervisor.subject = Some((Some(Role::Supervisor), None));
    assert_eq!(supervisor.refused(), Some(Inactive::UnknownSubject));
    supervisor.subject = Some((None, None));
    assert_eq!(supervisor.refused(), Some(Inactive::UnknownSubject));
}

#[test]
fn scopes_are_the_token_within_the_grant_minus_running_closures() {
    let mut world = parent_consent();
    world.token.as_mut().unwrap().0 = ScopeSet::parse("openid rooster cijfers").unwrap();
    world.grant.as_mut().unwrap().0 = ScopeSet::parse("openid naam cijfers").unwrap();
    world.closures = vec![
        closure(Scope::Cijfers, &[Audience::Partners], at(-1), at(1)),
        closure(Scope::OpenId, &[Audience::Partners], at(1), at(2)),
        closure(Scope::Naam, &[Audience::Partners], at(-1), at(1)),
    ];
    let allowed = world.allowed();
    assert_eq!(allowed.granted.to_string(), "openid cijfers");
    assert_eq!(
        allowed.scopes.to_string(),
        "openid",
        "cijfers closed; the openid closure has not begun"
    );
    assert_eq!(
        allowed.withheld,
        vec![Withheld {
            scope: "cijfers",
            reason: Arc::from("toetsweek"),
            until: at(1),
        }]
    );
    // The closure ends exactly at `ends_at`.
    world.closures = vec![closure(
        Scope::Cijfers,
        &[Audience::Partners],
        at(-1),
        now().timestamp(),
    )];
    assert!(world.allowed().withheld.is_empty());
}

#[test]
fn a_closure_for_parents_and_students_leaves_partners_alone() {
    let mut world = parent_consent();
    world.closures = vec![closure(
        Scope::Cijfers,
        &[Audience::Parents, Audience::Students],
        at(-1),
        at(1),
    )];
    assert!(world.allowed().scopes.contains(Scope::Cijfers));
    world.client.as_mut().unwrap().first_party = true;
    world.token.as_mut().unwrap().1 = None;
    world.grant.as_mut().unwrap().1 = None;
    assert!(
        !world.allowed().scopes.contains(Scope::Cijfers),
        "the student's own app"
    );
}

// Properties over generated facts.

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    any::<u8>().prop_map(|bits| {
        Scope::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, s)| s)
            .collect()
    })
}

fn day() -> impl Strategy<Value = i64> {
    (-3i64..=3).prop_map(at)
}

fn parent() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![Just(None), Just(Some(PARENT)), Just(Some(OTHER_PARENT))]
}

fn audiences() -> impl Strategy<Value = Vec<Audience>> {
    proptest::sample::subsequence(Audience::ALL.to_vec(), 0..=3)
}

fn closure_strategy() -> impl Strategy<Value = Closure> {
    (
        proptest::sample::select(Scope::ALL.to_vec()),
        audiences(),
        day(),
        day(),
    )
        .prop_map(|(scope, audiences, a, b)| Closure {
            scope,
            audiences,
            starts_at: a.min(b),
            ends_at: a.max(b),
            reason: Arc::from("reden"),
        })
}

fn world() -> impl Strategy<Value = World> {
    let token = proptest::option::weighted(
        0.9,
        (scope_set(), parent(), proptest::bool::weighted(0.1), day()),
    );
    let grant = proptest::option::weighted(
        0.9,
        (
            scope_set(),
            parent(),
            proptest::bool::weighted(0.1),
            day(),
            proptest::bool::weighted(0.9),
        ),
    );
    let client = proptest::option::weighted(
        0.9,
        (
            any::<bool>(),
            proptest::bool::weighted(0.1),
            proptest::sample::select(vec![
                AccreditationStatus::Accredited,
                AccreditationStatus::Pending,
                AccreditationStatus::Suspended,
            ]),
            proptest::option::of(day()),
            proptest::option::of(day()),
        )
            .prop_map(
                |(first_party, deactivated, status, from, until)| ClientFacts {
                    first_party,
                    deactivated,
                    accreditation: Accreditation {
                        status,
                        valid_from: from.map(|t| Utc.timestamp_opt(t, 0).unwrap()),
                        valid_until: until.map(|t| Utc.timestamp_opt(t, 0).unwrap()),
                    },
                },
            ),
    );
    let role = proptest::option::of(proptest::sample::select(vec![
        Role::Student,
        Role::Parent,
        Role::Supervisor,
    ]));
    let subject = proptest::option::weighted(
        0.9,
        (
            role,
            proptest::option::weighted(0.8, (10i32..=20).prop_map(|y| born(y).unwrap())),
        ),
    );
    let enrollment = (
        proptest::sample::select(vec!["12AB", "34CD"]),
        day(),
        proptest::option::of(day()),
    )
        .prop_map(|(brin, starts_at, ends_at)| Enrollment {
            school_brin: Arc::from(brin),
            starts_at,
            ends_at,
        });
    let guardian = proptest::option::of((
        prop_oneof![Just(PARENT), Just(OTHER_PARENT)],
        proptest::bool::weighted(0.8),
    ));
    (
        token,
        grant,
        client,
        subject,
        proptest::collection::vec(enrollment, 0..3),
        proptest::bool::weighted(0.8),
        [guardian.clone(), guardian],
        proptest::collection::vec(closure_strategy(), 0..4),
    )
        .prop_map(
            |(token, grant, client, subject, enrollments, link_open, guardians, closures)| World {
                token,
                grant,
                client,
                subject,
                home_school: "12AB".into(),
                enrollments,
                link_open,
                guardians,
                closures,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// What the grant no longer covers (a withdrawn scope) never comes back, and nothing
    /// beyond what the credential carries is ever allowed.
    #[test]
    fn a_withdrawn_scope_never_comes_back(w in world()) {
        if let Verdict::Active(allowed) = w.verdict() {
            let (token, grant) = (w.token.unwrap().0, w.grant.unwrap().0);
            prop_assert!(allowed.granted.is_subset(&token.intersection(&grant)));
            prop_assert!(allowed.scopes.is_subset(&allowed.granted));
        }
    }

    /// No allow without a valid accreditation and, for a partner, an open link at the school
    /// the student is enrolled at now.
    #[test]
    fn no_allow_without_accreditation_and_an_open_link(w in world()) {
        if let Verdict::Active(allowed) = w.verdict() {
            let client = w.client.clone().unwrap();
            prop_assert!(client.is_admitted_at(now()));
            prop_assert!(client.first_party || w.link_open);
            if !client.first_party {
                prop_assert_eq!(Some(&allowed.school), active_school(&w.enrollments, now()));
            }
        }
    }

    /// A parent's consent is honoured only for a linked child known to be under 18, and a
    /// parent on the token must be linked too.
    #[test]
    fn a_parent_acts_only_while_linked_and_the_child_is_a_minor(w in world()) {
        if let Verdict::Active(allowed) = w.verdict() {
            if !allowed.first_party {
                let (_, subject_born) = w.subject.unwrap();
                let facts = w.facts();
                for parent in [w.grant.unwrap().1, w.token.unwrap().1].into_iter().flatten() {
                    prop_assert!(facts.is_guardian(parent));
                }
                if w.grant.unwrap().1.is_some() {
                    let age = Age::of(subject_born, now().date_naive());
                    prop_assert!(age.parent_consent_stands());
                }
            }
        }
    }

    /// A closure for some audiences never touches another audience's answer, and what is
    /// withheld plus what is kept is exactly what was granted.
    #[test]
    fn a_closure_touches_only_its_audiences(w in world(), extra in closure_strategy()) {
        let before = w.verdict();
        let mut with = w.clone();
        with.closures.push(extra.clone());
        let after = with.verdict();
        match (&before, &after) {
            (Verdict::Active(b), Verdict::Active(a)) => {
                if !extra.audiences.contains(&b.audience) {
                    prop_assert_eq!(b, a);
                }
                prop_assert_eq!(a.granted, b.granted);
                let held: ScopeSet = a.withheld.iter().filter_map(|h| Scope::parse(h.scope)).collect();
                prop_assert_eq!(held.union(&a.scopes), a.granted);
                prop_assert!(held.intersection(&a.scopes).is_empty());
            }
            // Closures hold back scopes; they never decide whether a token is active.
            (Verdict::Inactive(b), Verdict::Inactive(a)) => prop_assert_eq!(b, a),
            _ => prop_assert!(false, "a closure changed activeness: {:?} -> {:?}", before, after),
        }
    }

    /// Losing a fact never turns a refusal into an allow: missing facts refuse.
    #[test]
    fn a_missing_fact_never_allows(w in world(), which in 0usize..6) {
        let mut less = w.clone();
        match which {
            0 => less.token = None,
            1 => less.grant = None,
            2 => less.client = None,
            3 => less.subject = None,
            4 => less.enrollments.clear(),
            _ => less.guardians = [None, None],
        }
        if let Verdict::Active(allowed) = less.verdict() {
            prop_assert_eq!(w.verdict(), Verdict::Active(allowed));
        }
    }

    /// The decision is a function of the facts and the time: the same input, the same verdict.
    #[test]
    fn the_same_facts_give_the_same_verdict(w in world()) {
        prop_assert_eq!(w.verdict(), w.clone().verdict());
    }
}

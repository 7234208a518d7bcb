//! The words on our pages, in Dutch (default) and English.

/// Every fixed text a page shows. One instance per language.
#[derive(Debug)]
pub struct Texts {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub product: &'static str,
    pub footer: &'static str,
    pub login_title: &'static str,
    pub login_intro: &'static str,
    pub school: &'static str,
    pub choose_school: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub login_button: &'static str,
    pub login_failed: &'static str,
    pub login_blocked: &'static str,
    pub login_for_app: &'static str,
    pub consent_title: &'static str,
    pub consent_wants: &'static str,
    pub accredited_until: &'static str,
    pub accredited: &'static str,
    pub consent_for_child: &'static str,
    pub child_not_eligible_adult: &'static str,
    pub child_not_eligible_enrolment: &'static str,
    pub child_not_eligible_link: &'static str,
    pub consent_scope_heading: &'static str,
    pub consent_withdraw_note: &'static str,
    pub approve: &'static str,
    pub deny: &'static str,
    pub signed_in_as: &'static str,
    pub back_to_app: &'static str,
    pub nothing_shared: &'static str,
}

pub const NL: Texts = Texts {
    lang: "nl",
    other_lang: "en",
    other_lang_name: "English",
    product: "Poortwachter",
    footer: "Je wachtwoord blijft bij je school. Apps krijgen het nooit te zien.",
    login_title: "Inloggen",
    login_intro: "Log in met het account van je school. Je geeft je wachtwoord nooit aan een andere app.",
    school: "School",
    choose_school: "Kies je school",
    username: "Gebruikersnaam",
    password: "Wachtwoord",
    login_button: "Inloggen",
    login_failed: "De combinatie van school, gebruikersnaam en wachtwoord klopt niet.",
    login_blocked: "Er is te vaak een verkeerd wachtwoord geprobeerd. Probeer het over een kwartier opnieuw, of vraag de school om hulp.",
    login_for_app: "wil dat je inlogt via je school.",
    consent_title: "Toestemming geven",
    consent_wants: "vraagt toegang tot de volgende gegevens:",
    accredited_until: "Geaccrediteerde partner, geldig tot",
    accredited: "Geaccrediteerde partner",
    consent_for_child: "Voor welk kind geef je toestemming?",
    child_not_eligible_adult: "18 jaar of ouder: geeft zelf toestemming",
    child_not_eligible_enrolment: "niet ingeschreven",
    child_not_eligible_link: "de school heeft deze koppeling niet opengezet",
    consent_scope_heading: "Wat de app mag zien",
    consent_withdraw_note: "Je kunt deze toestemming altijd weer intrekken. De school kan de koppeling ook dichtzetten.",
    approve: "Toestaan",
    deny: "Weigeren",
    signed_in_as: "Ingelogd als",
    back_to_app: "Terug naar de app",
    nothing_shared: "Er zijn geen gegevens gedeeld.",
};

pub const EN: Texts = Texts {
    lang: "en",
    other_lang: "nl",
    other_lang_name: "Nederlands",
    product: "Poortwachter",
    footer: "Your password stays with your school. Apps never see it.",
    login_title: "Sign in",
    login_intro: "Sign in with your school account. Never give your password to another app.",
    school: "School",
    choose_school: "Choose your school",
    username: "Username",
    password: "Password",
    login_button: "Sign in",
    login_failed: "The combination of school, username and password is not correct.",
    login_blocked: "A wrong password was tried too often. Try again in fifteen minutes, or ask the school for help.",
    login_for_app: "wants you to sign in through your school.",
    consent_title: "Give consent",
    consent_wants: "asks for access to the following data:",
    accredited_until: "Accredited partner, valid until",
    accredited: "Accredited partner",
    consent_for_child: "Which child are you consenting for?",
    child_not_eligible_adult: "18 or older: consents personally",
    child_not_eligible_enrolment: "not enrolled",
    child_not_eligible_link: "the school has not opened this link",
    consent_scope_heading: "What the app may see",
    consent_withdraw_note:
        "You can withdraw this consent at any time. The school can also close the link.",
    approve: "Allow",
    deny: "Deny",
    signed_in_as: "Signed in as",
    back_to_app: "Back to the app",
    nothing_shared: "No data was shared.",
};

impl Texts {
    pub fn get(english: bool) -> &'static Texts {
        if english {
            &EN
        } else {
            &NL
        }
    }
}

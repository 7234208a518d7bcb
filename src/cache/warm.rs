//! Filling the policy cache at start, in bulk, so a restarted instance (or a new one behind
//! the load balancer) answers its first requests from memory instead of paying six point
//! lookups per unseen token. At 1,000,000 students and 100,000 live tokens, filling lazily
//! took minutes of traffic; one pass over the live tokens in pages of a thousand, with one
//! `IN (…)` read per fact kind and page, takes seconds.
//!
//! Correctness does not depend on it: every entry is stored under the generation seen before
//! its page was read, and every eviction that came while a page was read and stored is
//! applied once more afterwards ([`PolicyCache::settle`]), so a change that raced the fill
//! is never hidden. Facts the fill does not cover (unknown tokens, a parent's list of
//! children, a link without a row) are loaded on first use as before.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PolicyCache;
use crate::storage::{DbResult, Store, MAX_IN_LIST};

/// What one fill stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Warmed {
    pub tokens: usize,
    pub grants: usize,
    pub accounts: usize,
    pub links: usize,
    /// Evictions that raced a page and were applied again.
    pub raced: usize,
}

/// Fill the cache with the facts of up to `limit` live tokens (the cache's own capacity is
/// the sensible limit: more would only evict each other).
pub async fn warm(
    cache: &PolicyCache,
    store: &Store,
    now: DateTime<Utc>,
    limit: usize,
) -> DbResult<Warmed> {
    let mut warmed = Warmed::default();

    // Links and clients are few (schools × partners; partners and resource servers): all at
    // once.
    let mark = cache.mark();
    let links = store.all_links().await?;
    let clients = store.all_clients().await?;
    warmed.links = links.len();
    for (brin, client, open) in links {
        cache.fill(&cache.links, (brin, client), open, mark);
    }
    for client in clients {
        cache.fill(
            &cache.clients,
            client.client_id.clone(),
            Some(Arc::new(client)),
            mark,
        );
    }
    warmed.raced += cache.settle(mark);

    let mut after = String::new();
    let mut schools_done: HashSet<Arc<str>> = HashSet::new();
    while warmed.tokens < limit {
        let page_size = MAX_IN_LIST.min(limit - warmed.tokens);
        let mark = cache.mark();
        let tokens = store
            .live_access_tokens_after(&after, now, page_size)
            .await?;
        let Some(last) = tokens.last() else { break };
        after.clone_from(&last.token_hash);

        let grant_ids: Vec<&str> = distinct(tokens.iter().map(|t| t.grant_id.as_str()));
        let grants = store.get_grants(&grant_ids).await?;
        let student_ids: Vec<&str> = distinct(grants.iter().map(|g| g.student_id.as_str()));
        // The students, and the parents introspection names as the actor.
        let account_ids = distinct(
            student_ids
                .iter()
                .copied()
                .chain(grants.iter().filter_map(|g| g.actor()))
                .chain(tokens.iter().filter_map(|t| t.actor_id.as_deref())),
        );
        let accounts = store.get_accounts(&account_ids).await?;
        let enrollments = store.enrollments_of_many(&student_ids).await?;
        let guardianships: HashSet<(String, String)> = store
            .guardianships_of(&student_ids)
            .await?
            .into_iter()
            .collect();

        // The schools and partners this page names, once each.
        let mut by_student: HashMap<String, Vec<_>> = HashMap::new();
        for (student, enrollment) in enrollments {
            by_student.entry(student).or_default().push(enrollment);
        }
        let mut new_schools = Vec::new();
        for enrollment in by_student.values().flatten() {
            if schools_done.insert(Arc::clone(&enrollment.school_brin)) {
                let rules: Vec<_> = store
                    .closures_of(&enrollment.school_brin)
                    .await?
                    .iter()
                    .filter_map(|c| c.rule())
                    .collect();
                new_schools.push((enrollment.school_brin.to_string(), rules));
            }
        }
        for account in &accounts {
            if schools_done.insert(Arc::from(account.school_brin.as_str())) {
                let rules: Vec<_> = store
                    .closures_of(&account.school_brin)
                    .await?
                    .iter()
                    .filter_map(|c| c.rule())
                    .collect();
                new_schools.push((account.school_brin.clone(), rules));
            }
        }

        // The guardianships the rules will ask about: the parent who gave the grant and the
        // one holding the token, each with the student. Known yes or no, since every
        // guardianship of these students was read.
        let student_of: HashMap<&str, &str> = grants
            .iter()
            .map(|g| (g.id.as_str(), g.student_id.as_str()))
            .collect();
        let mut pairs = Vec::new();
        for grant in &grants {
            if let Some(parent) = grant.actor() {
                pairs.push((parent.to_string(), grant.student_id.clone()));
            }
        }
        for token in &tokens {
            if let (Some(actor), Some(student)) =
                (&token.actor_id, student_of.get(token.grant_id.as_str()))
            {
                pairs.push((actor.clone(), student.to_string()));
            }
        }

        // Store it all, then apply again what changed meanwhile.
        for (brin, rules) in new_schools {
            cache.fill(&cache.closures, brin, Arc::new(rules), mark);
        }
        for (parent, student) in pairs {
            let known = guardianships.contains(&(parent.clone(), student.clone()));
            cache.fill(&cache.guardianships, (parent, student), known, mark);
        }
        for student in &student_ids {
            let rows = by_student.remove(*student).unwrap_or_default();
            cache.fill(
                &cache.enrollments,
                student.to_string(),
                Arc::new(rows),
                mark,
            );
        }
        warmed.accounts += accounts.len();
        for account in accounts {
            cache.fill(
                &cache.accounts,
                account.id.clone(),
                Some(Arc::new(account)),
                mark,
            );
        }
        warmed.grants += grants.len();
        for grant in grants {
            cache.fill(&cache.grants, grant.id.clone(), Some(Arc::new(grant)), mark);
        }
        warmed.tokens += tokens.len();
        for token in tokens {
            cache.fill(
                &cache.tokens,
                token.token_hash.clone(),
                Arc::new(token),
                mark,
            );
        }
        warmed.raced += cache.settle(mark);
        // Leave the cores to requests between pages.
        tokio::task::yield_now().await;
    }
    Ok(warmed)
}

/// Run [`warm`] in the background at start: `/readyz` answers "not ready" while it runs, for
/// at most `patience` (a fill that takes longer goes on while the instance serves).
pub fn spawn(cache: Arc<PolicyCache>, store: Store, now: DateTime<Utc>, patience: Duration) {
    cache.warming.store(true, Ordering::Release);
    let limit = usize::try_from(cache.tokens.capacity()).unwrap_or(usize::MAX);
    let flag = Arc::clone(&cache);
    tokio::spawn(async move {
        tokio::time::sleep(patience).await;
        flag.warming.store(false, Ordering::Release);
    });
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        match warm(&cache, &store, now, limit).await {
            Ok(warmed) => tracing::info!(
                tokens = warmed.tokens,
                grants = warmed.grants,
                accounts = warmed.accounts,
                links = warmed.links,
                raced = warmed.raced,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "policy cache filled"
            ),
            // Not fatal: the cache fills lazily as before.
            Err(e) => tracing::warn!(error = %e, "filling the policy cache failed"),
        }
        cache.warming.store(false, Ordering::Release);
    });
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

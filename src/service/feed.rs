//! The feed of a session's subscriptions: the trail's new rows, and which of them one actor may
//! receive as an audit row or as a change.
//!
//! The audit trail is the one record every writer goes through (the daemon, `vipanel admin`,
//! other nodes of a PostgreSQL setup), each successful change inside its own transaction, so
//! the feed polls it by `seq` like `audit list --follow` does. Two scopes:
//!
//! - **audit**: exactly what `audit list` shows the actor (owners and admins their tenant's rows,
//!   admins every tenant's, everyone else only the rows it caused): the same filter, applied to
//!   each row.
//! - **changes**: the rows that record a successful change of an object (`site.create`,
//!   `user.lock`, `key.add`, `tenant.delete`, …; not logins nor a session's start and end) that
//!   the actor may see: in its own tenant (admins: any), and of a kind its role may read there
//!   (an operator learns of new sites, not of new users), or a row the audit scope shows it
//!   anyway. Who made the change is told only when the audit scope shows the row.

use super::audit_trail::audit_filter;
use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, AuditEntry, AuditQuery, Services};
use crate::error::Result;
use crate::store::AuditFilter;

/// One new row of the trail, and what the actor may receive of it.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub entry: AuditEntry,
    /// `audit list` would show the row to the actor.
    pub audit: bool,
    /// The row records a change the actor may see.
    pub change: bool,
}

/// What one read of the feed found.
#[derive(Debug, Clone)]
pub struct FeedBatch {
    /// The rows the actor may receive something of.
    pub rows: Vec<FeedRow>,
    /// The `seq` to go on from: the last row read, shown or not.
    pub next: i64,
    /// As many rows were read as asked: more may follow at once.
    pub full: bool,
}

impl FeedRow {
    /// Who made the change, when the actor may know it (see the module's doc).
    pub fn change_actor(&self) -> Option<&str> {
        self.audit.then_some(self.entry.actor.as_str())
    }
}

impl Services {
    /// Where a new subscription starts: the newest `seq` of the trail.
    pub async fn feed_head(&self) -> Result<i64> {
        self.db.audit_head_seq().await
    }

    /// The trail's rows after `after_seq` (at most `limit` read), oldest first, each with what
    /// `actor` may receive of it; rows it may receive nothing of are left out.
    pub async fn feed_next(&self, actor: &Actor, after_seq: i64, limit: i64) -> Result<FeedBatch> {
        let query = AuditQuery::default();
        let audit_scope = audit_filter(actor, &query)?;
        // Read the actor's tenant (every tenant for admins); narrowed per row below.
        let read = AuditFilter {
            tenant: audit_scope.tenant,
            ..AuditFilter::default()
        };
        let rows = self.db.audit_query_after(&read, after_seq, limit).await?;
        let next = rows.last().map_or(after_seq, |r| r.seq);
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit;
        let rows = rows
            .into_iter()
            .map(AuditEntry::from)
            .filter_map(|entry| {
                let audit = admits(&audit_scope, &entry);
                let change = sees_change(actor, &entry, audit);
                (audit || change).then_some(FeedRow {
                    entry,
                    audit,
                    change,
                })
            })
            .collect();
        Ok(FeedBatch { rows, next, full })
    }
}

/// Whether `filter` (as built by `audit_filter`) lets `audit list` show `entry`; `since` is not
/// applied, as when following.
fn admits(filter: &AuditFilter<'_>, entry: &AuditEntry) -> bool {
    filter.tenant.is_none_or(|t| t == entry.tenant)
        && filter.actor.is_none_or(|a| a == entry.actor)
        && filter.action.is_none_or(|a| a == entry.action)
        && (!filter.flagged || !entry.flag.is_empty())
}

/// Whether the row records a change of an object: a successful `noun.verb` row other than a
/// login step or a session's start or end.
pub fn is_change(entry: &AuditEntry) -> bool {
    let Some((noun, _)) = entry.action.split_once('.') else {
        return false;
    };
    entry.result == "ok"
        && noun != "login"
        && !matches!(entry.action.as_str(), "session.start" | "session.end")
}

/// The kind of object a change concerns: the noun of its action (`site` of `site.create`).
pub fn change_kind(action: &str) -> &str {
    action.split_once('.').map_or(action, |(noun, _)| noun)
}

/// Whether `actor` may learn of the change `entry` records (`audit`: whether it may read the row
/// itself in the trail).
fn sees_change(actor: &Actor, entry: &AuditEntry, audit: bool) -> bool {
    if !is_change(entry) {
        return false;
    }
    if audit {
        return true;
    }
    if !actor.is_admin() && entry.tenant != actor.tenant {
        return false;
    }
    // Kinds whose list the role may read in its tenant; the trail itself and live sessions
    // are scoped by their services (own rows, own sessions), so only the audit scope shows them.
    let resource = match change_kind(&entry.action) {
        "site" => Resource::Site,
        "server" => Resource::Server,
        "tenant" => Resource::Tenant,
        "user" | "totp" => Resource::User,
        "key" => Resource::Key,
        "job" => Resource::Job,
        _ => return false,
    };
    let owner = if matches!(resource, Resource::User) && entry.target == actor.user {
        Owner::OwnUser
    } else {
        Owner::Tenant(actor.tenant_id)
    };
    policy::check(actor, resource, Verb::Read, owner, "change").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn actor(user: &str, tenant: &str, role: Role) -> Actor {
        Actor {
            user_id: Some(1),
            user: user.into(),
            tenant_id: if tenant == "acme" { 2 } else { 3 },
            tenant: tenant.into(),
            role,
            key_fingerprint: None,
            source: "127.0.0.1:1".into(),
            automation: false,
        }
    }

    fn row(by: &str, tenant: &str, action: &str, target: &str, result: &str) -> AuditEntry {
        AuditEntry {
            seq: 1,
            at: chrono::Utc::now(),
            actor: by.into(),
            tenant: tenant.into(),
            role: "owner".into(),
            key_fingerprint: None,
            source: "local".into(),
            action: action.into(),
            target: target.into(),
            result: result.into(),
            detail: String::new(),
            command: None,
            exit_code: None,
            flag: String::new(),
        }
    }

    fn sees(actor: &Actor, entry: &AuditEntry) -> (bool, bool) {
        let query = AuditQuery::default();
        let scope = audit_filter(actor, &query).unwrap();
        let audit = admits(&scope, entry);
        (audit, sees_change(actor, entry, audit))
    }

    #[test]
    fn changes_are_successful_object_changes() {
        assert!(is_change(&row("a", "acme", "site.create", "x", "ok")));
        assert!(is_change(&row("a", "acme", "user.lock", "x", "ok")));
        assert!(!is_change(&row(
            "a",
            "acme",
            "site.create",
            "x",
            "forbidden"
        )));
        for action in [
            "login",
            "login.lockout",
            "session.start",
            "session.end",
            "audit",
        ] {
            assert!(!is_change(&row("a", "acme", action, "x", "ok")), "{action}");
        }
        assert_eq!(change_kind("site.create"), "site");
        assert_eq!(change_kind("user.enroll-code"), "user");
    }

    #[test]
    fn the_scopes_follow_the_policy() {
        let otto = actor("otto", "acme", Role::Operator);
        let olive = actor("olive", "acme", Role::Owner);
        let admin = actor("root", "system", Role::Admin);
        let site = row("olive", "acme", "site.create", "a.example", "ok");
        // An operator learns of the tenant's new site, not who made it, nor its audit row.
        assert_eq!(sees(&otto, &site), (false, true));
        assert_eq!(sees(&olive, &site), (true, true));
        assert_eq!(sees(&admin, &site), (true, true));
        // Another tenant's changes are invisible but to admins.
        let beta = row("bert", "beta", "site.create", "b.example", "ok");
        assert_eq!(sees(&otto, &beta), (false, false));
        assert_eq!(sees(&olive, &beta), (false, false));
        assert_eq!(sees(&admin, &beta), (true, true));
        // Users are for owners; an operator learns only of changes to itself.
        let user = row("olive", "acme", "user.create", "newbie", "ok");
        assert_eq!(sees(&otto, &user), (false, false));
        assert_eq!(sees(&olive, &user), (true, true));
        let lock_self = row("olive", "acme", "user.role", "otto", "ok");
        assert_eq!(sees(&otto, &lock_self), (false, true));
        // Its own rows: in the audit scope, and a change when it is one.
        let own = row("otto", "acme", "site.delete", "a.example", "ok");
        assert_eq!(sees(&otto, &own), (true, true));
        let refused = row("otto", "acme", "user.create", "x", "forbidden");
        assert_eq!(sees(&otto, &refused), (true, false));
        // Others' logins and sessions: only for the audit scope of managers.
        let login = row("vera", "acme", "session.start", "s1", "ok");
        assert_eq!(sees(&otto, &login), (false, false));
        assert_eq!(sees(&olive, &login), (true, false));
        let kill = row("olive", "acme", "session.kill", "s1", "ok");
        assert_eq!(sees(&otto, &kill), (false, false));
        assert_eq!(sees(&olive, &kill), (true, true));
    }
}

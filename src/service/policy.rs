//! The one place that decides whether an actor may do something. Deny by default.
//!
//! Two questions, in this order: may this role do this kind of thing at all (else `forbidden`,
//! exit 6), and is the object inside the actor's tenant (else `not_found`, exit 3: another
//! tenant's objects are invisible, never "forbidden"). Every service calls [`check`] before
//! touching the store.

use super::Actor;
use crate::domain::Role;
use crate::error::{Error, Result};

/// What kind of object an action touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Tenant,
    User,
    Key,
    Site,
    Server,
    Dashboard,
    /// The audit trail: everyone reads (scoped by the service); only admins verify or prune.
    Audit,
    /// Live sessions: everyone lists (scoped by the service); owners and admins kill.
    Session,
    /// Queued work: a tenant's users read its jobs, operators and above cancel and retry them;
    /// platform jobs (no tenant) are admins' only (see [`check_job`]).
    Job,
}

/// Reading or changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Read,
    Write,
}

/// Whose object it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The actor's own user (its keys, its user record).
    OwnUser,
    /// An object of the tenant with this id.
    Tenant(i64),
    /// A platform-wide object (other tenants, the tenant list itself, shared servers).
    Platform,
}

/// The role matrix: may `role` do `verb` on `resource` of `owner`, ignoring tenancy?
fn role_allows(role: Role, resource: Resource, verb: Verb, owner: Owner) -> bool {
    use Resource::*;
    if role == Role::Admin {
        return true;
    }
    if owner == Owner::OwnUser && matches!(resource, User | Key) {
        // Everyone reads its own user record and manages its own keys.
        return resource == Key || verb == Verb::Read;
    }
    match (resource, verb) {
        (Tenant, Verb::Read) => true,
        (Tenant, Verb::Write) => false,
        (User | Key, _) => role >= Role::Owner,
        (Site | Server, Verb::Read) => true,
        (Site | Server, Verb::Write) => role >= Role::Operator,
        (Dashboard | Audit, Verb::Read) => true,
        (Dashboard | Audit, Verb::Write) => false,
        (Session, Verb::Read) => true,
        (Session, Verb::Write) => role >= Role::Owner,
        (Job, Verb::Read) => true,
        (Job, Verb::Write) => role >= Role::Operator,
    }
}

/// Decides one action. `what` names the object for the not-found message ("site example.com").
pub fn check(
    actor: &Actor,
    resource: Resource,
    verb: Verb,
    owner: Owner,
    what: &str,
) -> Result<()> {
    if !role_allows(actor.role, resource, verb, owner) {
        return Err(Error::forbidden(format!(
            "your role ({}) may not {} {}",
            actor.role,
            match (resource, verb) {
                (_, Verb::Read) => "view",
                // The chain is never changed; "writing" it here means checking it whole.
                (Resource::Audit, Verb::Write) => "verify or prune",
                (Resource::Session, Verb::Write) => "kill",
                (_, Verb::Write) => "change",
            },
            resource_plural(resource)
        )));
    }
    let visible = match owner {
        Owner::OwnUser => true,
        Owner::Tenant(id) => actor.is_admin() || id == actor.tenant_id,
        Owner::Platform => true,
    };
    if !visible {
        return Err(not_found(what));
    }
    Ok(())
}

/// Decides one action on a job of `tenant_id` (`None`: a platform job, which only admins see;
/// to anyone else it reads as not found, like another tenant's).
pub fn check_job(actor: &Actor, verb: Verb, tenant_id: Option<i64>, what: &str) -> Result<()> {
    match tenant_id {
        Some(id) => check(actor, Resource::Job, verb, Owner::Tenant(id), what),
        None if actor.is_admin() => Ok(()),
        None => {
            check(
                actor,
                Resource::Job,
                verb,
                Owner::Tenant(actor.tenant_id),
                what,
            )?;
            Err(not_found(what))
        }
    }
}

/// The tenant an actor works in: its own, or `--tenant` for admins (anyone else: exit 6).
pub fn require_admin_for_tenant_flag(actor: &Actor, flag: Option<&str>) -> Result<()> {
    if flag.is_some() && !actor.is_admin() {
        return Err(Error::forbidden("only admins may use --tenant"));
    }
    Ok(())
}

/// The one not-found error, identical for missing and hidden objects.
pub fn not_found(what: &str) -> Error {
    Error::not_found(format!("{what} not found"))
}

fn resource_plural(resource: Resource) -> &'static str {
    match resource {
        Resource::Tenant => "tenants",
        Resource::User => "users",
        Resource::Key => "other users' keys",
        Resource::Site => "sites",
        Resource::Server => "servers",
        Resource::Dashboard => "the dashboard",
        Resource::Audit => "the audit chain",
        Resource::Session => "sessions",
        Resource::Job => "jobs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Resource::*;

    fn actor(role: Role, tenant_id: i64) -> Actor {
        Actor {
            user_id: Some(10),
            user: "u".into(),
            tenant_id,
            tenant: "t".into(),
            role,
            key_fingerprint: None,
            source: "test".into(),
            automation: false,
        }
    }

    #[test]
    fn matrix() {
        let own = Owner::Tenant(1);
        let cases = [
            // (role, resource, verb, allowed in own tenant)
            (Role::Viewer, Site, Verb::Read, true),
            (Role::Viewer, Site, Verb::Write, false),
            (Role::Operator, Site, Verb::Write, true),
            (Role::Operator, User, Verb::Read, false),
            (Role::Operator, User, Verb::Write, false),
            (Role::Owner, User, Verb::Write, true),
            (Role::Owner, Key, Verb::Write, true),
            (Role::Owner, Tenant, Verb::Write, false),
            (Role::Admin, Tenant, Verb::Write, true),
            (Role::Viewer, Dashboard, Verb::Read, true),
            (Role::Viewer, Session, Verb::Read, true),
            (Role::Viewer, Session, Verb::Write, false),
            (Role::Operator, Session, Verb::Write, false),
            (Role::Owner, Session, Verb::Write, true),
            (Role::Owner, Audit, Verb::Write, false),
        ];
        for (role, res, verb, allowed) in cases {
            let got = check(&actor(role, 1), res, verb, own, "x");
            assert_eq!(got.is_ok(), allowed, "{role:?} {res:?} {verb:?}");
            if !allowed {
                assert_eq!(got.unwrap_err().kind, crate::error::ErrorKind::Forbidden);
            }
        }
    }

    #[test]
    fn everyone_manages_own_keys_but_not_own_user() {
        for role in Role::ALL {
            let a = actor(role, 1);
            assert!(check(&a, Key, Verb::Write, Owner::OwnUser, "k").is_ok());
            assert!(check(&a, User, Verb::Read, Owner::OwnUser, "u").is_ok());
        }
        let viewer = actor(Role::Viewer, 1);
        assert!(check(&viewer, User, Verb::Write, Owner::OwnUser, "u").is_err());
    }

    #[test]
    fn other_tenants_read_as_not_found() {
        let err = check(
            &actor(Role::Owner, 1),
            Site,
            Verb::Read,
            Owner::Tenant(2),
            "site a.com",
        )
        .unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::NotFound);
        assert_eq!(err.message, "site a.com not found");
        assert!(
            check(
                &actor(Role::Admin, 1),
                Site,
                Verb::Write,
                Owner::Tenant(2),
                "s"
            )
            .is_ok()
        );
    }

    #[test]
    fn jobs_by_role_and_tenancy() {
        use crate::error::ErrorKind::{Forbidden, NotFound};
        let kind = |r: Result<()>| r.err().map(|e| e.kind);
        for role in Role::ALL {
            let a = actor(role, 1);
            assert!(
                check_job(&a, Verb::Read, Some(1), "job 1").is_ok(),
                "{role:?}"
            );
            let write = check_job(&a, Verb::Write, Some(1), "job 1");
            assert_eq!(write.is_ok(), role >= Role::Operator, "{role:?}");
            let other = check_job(&a, Verb::Read, Some(2), "job 2");
            let platform = check_job(&a, Verb::Read, None, "job 3");
            if role == Role::Admin {
                assert!(other.is_ok() && platform.is_ok());
                assert!(check_job(&a, Verb::Write, None, "job 3").is_ok());
            } else {
                assert_eq!(kind(other), Some(NotFound), "{role:?}");
                assert_eq!(kind(platform), Some(NotFound), "{role:?}");
            }
        }
        let viewer = actor(Role::Viewer, 1);
        assert_eq!(
            kind(check_job(&viewer, Verb::Write, Some(1), "job 1")),
            Some(Forbidden)
        );
    }

    #[test]
    fn tenant_flag_is_admin_only() {
        assert!(require_admin_for_tenant_flag(&actor(Role::Owner, 1), Some("x")).is_err());
        assert!(require_admin_for_tenant_flag(&actor(Role::Admin, 1), Some("x")).is_ok());
        assert!(require_admin_for_tenant_flag(&actor(Role::Owner, 1), None).is_ok());
    }
}

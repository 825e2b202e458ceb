//! Users: `user list|show|create|delete|role|lock|unlock`.

use super::audit::{conflict, record_ok};
use super::policy::{self, Owner, Resource, Verb};
use super::tenants::SYSTEM_TENANT;
use super::{Actor, CreatedUser, Services, User};
use crate::domain::{Name, Role, SshPublicKey};
use crate::error::{Error, Result};
use crate::store::UserRow;

/// Owners manage the keys and authenticators of their tenant's operators and viewers, not those
/// of other owners (that would let one owner log in as another): admins do that.
pub(super) fn refuse_peer_or_above(actor: &Actor, row: &UserRow, what: &str) -> Result<()> {
    if actor.is_user(row.id) || actor.is_admin() {
        return Ok(());
    }
    if Role::parse(&row.role)? >= actor.role {
        return Err(Error::forbidden(format!(
            "you may not manage the {what} of {} (role {}): only admins manage those of users at or above your role",
            row.name, row.role
        )));
    }
    Ok(())
}

/// Names that cannot be user names: `panel` is the SSH login name meaning "whoever owns the key".
const RESERVED_USER_NAMES: [&str; 2] = ["panel", "root"];

/// `user create` input, already parsed.
#[derive(Debug, Clone)]
pub struct UserCreate {
    pub name: Name,
    pub role: Role,
    pub tenant: Option<Name>,
    pub keys: Vec<SshPublicKey>,
}

impl Services {
    pub async fn user_list(&self, actor: &Actor, tenant: Option<&Name>) -> Result<Vec<User>> {
        let (tenant_id, _) = self.target_tenant(actor, tenant).await?;
        policy::check(
            actor,
            Resource::User,
            Verb::Read,
            Owner::Tenant(tenant_id),
            "users",
        )?;
        let scope = (tenant.is_some() || !actor.is_admin()).then_some(tenant_id);
        Ok(self
            .db
            .users(scope)
            .await?
            .into_iter()
            .map(User::from)
            .collect())
    }

    pub async fn user_show(&self, actor: &Actor, name: &Name) -> Result<User> {
        let row = self.visible_user(actor, name, Verb::Read).await?;
        Ok(User::from(row))
    }

    /// Finds a user and checks the actor may `verb` it; hidden users read as not found.
    pub(super) async fn visible_user(
        &self,
        actor: &Actor,
        name: &Name,
        verb: Verb,
    ) -> Result<UserRow> {
        let what = format!("user {name}");
        let row = self.db.user_by_name(name.as_str()).await?;
        let owner = match &row {
            Some(r) if actor.is_user(r.id) => Owner::OwnUser,
            Some(r) => Owner::Tenant(r.tenant_id),
            None => Owner::Tenant(actor.tenant_id),
        };
        policy::check(actor, Resource::User, verb, owner, &what)?;
        row.ok_or_else(|| policy::not_found(&what))
    }

    pub async fn user_create(&self, actor: &Actor, req: UserCreate) -> Result<CreatedUser> {
        let name = req.name.clone();
        self.audited(actor, "user.create", name.as_str(), async {
            let (tenant_id, tenant) = self.target_tenant(actor, req.tenant.as_ref()).await?;
            policy::check(
                actor,
                Resource::User,
                Verb::Write,
                Owner::Tenant(tenant_id),
                "users",
            )?;
            check_role_grant(actor, req.role, &tenant)?;
            if RESERVED_USER_NAMES.contains(&name.as_str()) {
                return Err(Error::invalid(format!(
                    "{name} is a reserved name; pick another"
                )));
            }
            if self.db.user_by_name(name.as_str()).await?.is_some() {
                return Err(conflict(format!("user {name} already exists")));
            }
            let mut tx = self.db.begin().await?;
            let user_id = tx
                .insert_user(tenant_id, name.as_str(), req.role.as_str())
                .await?;
            let fingerprints =
                super::keys::insert_keys(&mut tx, user_id, &req.keys, &Default::default()).await?;
            let (enroll_code, enroll_code_expires_at) =
                self.issue_enroll_code(&mut tx, user_id, actor).await?;
            let detail = format!(
                "tenant={tenant} role={} keys={}",
                req.role,
                fingerprints.len()
            );
            record_ok(
                &mut tx,
                actor,
                &tenant,
                "user.create",
                name.as_str(),
                &detail,
            )
            .await?;
            tx.commit().await?;
            let user = self.user_show(actor, &name).await?;
            Ok(CreatedUser {
                user,
                key_fingerprints: fingerprints,
                enroll_code,
                enroll_code_expires_at,
            })
        })
        .await
    }

    pub async fn user_delete(&self, actor: &Actor, name: &Name) -> Result<User> {
        self.audited(actor, "user.delete", name.as_str(), async {
            refuse_self(actor, name, SELF_DELETE)?;
            let row = self.visible_user(actor, name, Verb::Write).await?;
            let mut tx = self.db.begin().await?;
            if row.role == Role::Admin.as_str() && tx.count_other_admins(row.id).await? == 0 {
                return Err(conflict(
                    "this is the last admin; create another admin first",
                ));
            }
            tx.delete_user(row.id).await?;
            record_ok(
                &mut tx,
                actor,
                &row.tenant,
                "user.delete",
                name.as_str(),
                &format!("tenant={}", row.tenant),
            )
            .await?;
            tx.commit().await?;
            Ok(User::from(row))
        })
        .await
    }

    pub async fn user_set_role(&self, actor: &Actor, name: &Name, role: Role) -> Result<User> {
        self.audited(actor, "user.role", name.as_str(), async {
            refuse_self(actor, name, "you cannot change your own role")?;
            let row = self.visible_user(actor, name, Verb::Write).await?;
            check_role_grant(actor, role, &row.tenant)?;
            let mut tx = self.db.begin().await?;
            tx.set_user_role(row.id, role.as_str()).await?;
            let detail = format!("{} -> {role}", row.role);
            record_ok(
                &mut tx,
                actor,
                &row.tenant,
                "user.role",
                name.as_str(),
                &detail,
            )
            .await?;
            tx.commit().await?;
            self.user_show(actor, name).await
        })
        .await
    }

    pub async fn user_set_locked(&self, actor: &Actor, name: &Name, locked: bool) -> Result<User> {
        let action = if locked { "user.lock" } else { "user.unlock" };
        self.audited(actor, action, name.as_str(), async {
            refuse_self(actor, name, "you cannot lock or unlock yourself")?;
            let row = self.visible_user(actor, name, Verb::Write).await?;
            let mut tx = self.db.begin().await?;
            if locked
                && row.role == Role::Admin.as_str()
                && tx.count_other_admins(row.id).await? == 0
            {
                return Err(conflict(
                    "this is the last unlocked admin; it cannot be locked",
                ));
            }
            tx.set_user_locked(row.id, locked).await?;
            if !locked {
                // Unlocking also lifts a lockout after wrong codes and forgets those failures.
                tx.set_locked_until(row.id, None).await?;
            }
            record_ok(&mut tx, actor, &row.tenant, action, name.as_str(), "").await?;
            tx.commit().await?;
            self.user_show(actor, name).await
        })
        .await
    }
}

pub(super) const SELF_DELETE: &str = "you cannot delete yourself; ask another owner or admin";

/// Changing your own user (delete, role, lock) is refused before anything else, whatever the
/// role: it would lock people out of their own tenant.
pub(super) fn refuse_self(actor: &Actor, name: &Name, message: &str) -> Result<()> {
    if actor.user == name.as_str() {
        return Err(conflict(message));
    }
    Ok(())
}

/// Who may hand out which role where: admins only in `system` (and only by admins); the
/// `system` tenant holds admins only; owners grant at most owner.
fn check_role_grant(actor: &Actor, role: Role, tenant: &str) -> Result<()> {
    if role > actor.role {
        return Err(Error::forbidden(format!(
            "your role ({}) cannot grant the role {role}",
            actor.role
        )));
    }
    match (role == Role::Admin, tenant == SYSTEM_TENANT) {
        (true, false) => Err(Error::invalid(
            "admins belong to the system tenant; use --tenant system",
        )),
        (false, true) => Err(Error::invalid(
            "the system tenant holds admins only; create customer users in their own tenant (--tenant T)",
        )),
        _ => Ok(()),
    }
}

//! Checks run before asking "are you sure?": the object exists, is visible and may be deleted
//! by this actor, so nobody is asked to confirm something that would be refused anyway.

use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, Services};
use crate::domain::{DomainName, Name, SessionId};
use crate::error::Result;

/// Something a destructive command is about to remove.
#[derive(Debug, Clone, Copy)]
pub enum DeleteTarget<'a> {
    Tenant(&'a Name),
    User(&'a Name),
    Key(&'a str),
    Site(&'a DomainName),
    /// Killing a session (it cannot be undone either).
    Session(&'a SessionId),
}

impl Services {
    /// Runs the same checks as the deletion itself (a refusal is audited under the same action).
    pub async fn check_delete(&self, actor: &Actor, target: DeleteTarget<'_>) -> Result<()> {
        let (action, name) = match target {
            DeleteTarget::Tenant(name) => ("tenant.delete", name.to_string()),
            DeleteTarget::User(name) => ("user.delete", name.to_string()),
            DeleteTarget::Key(fingerprint) => ("key.remove", fingerprint.to_owned()),
            DeleteTarget::Site(domain) => ("site.delete", domain.to_string()),
            DeleteTarget::Session(id) => ("session.kill", id.to_string()),
        };
        self.audited(actor, action, &name, async {
            match target {
                DeleteTarget::Tenant(name) => {
                    policy::check(
                        actor,
                        Resource::Tenant,
                        Verb::Write,
                        Owner::Platform,
                        "tenant",
                    )?;
                    self.tenant_show(actor, name).await.map(drop)
                }
                DeleteTarget::User(name) => {
                    super::users::refuse_self(actor, name, super::users::SELF_DELETE)?;
                    self.visible_user(actor, name, Verb::Write).await.map(drop)
                }
                DeleteTarget::Key(fingerprint) => {
                    self.visible_key(actor, fingerprint).await.map(drop)
                }
                DeleteTarget::Site(domain) => self
                    .visible_site(actor, domain, Verb::Write)
                    .await
                    .map(drop),
                DeleteTarget::Session(id) => self.session_to_kill(actor, id).map(drop),
            }
        })
        .await
    }
}

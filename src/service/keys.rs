//! SSH keys: `key list|add|remove`. Everyone manages its own keys; owners and admins also
//! those of the users they manage.

use super::audit::{conflict, record_ok};
use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, Key, Services};
use crate::domain::{Name, Role, SourceNets, SshPublicKey};
use crate::error::{Error, Result};
use crate::store::{KeyRow, NewKey, Tx, UserRow};

/// How added keys may be used.
#[derive(Debug, Clone, Default)]
pub struct KeyOptions {
    /// An automation key: no second step, only from these networks, with at most this role.
    pub automation: Option<(SourceNets, Option<Role>)>,
}

impl KeyOptions {
    fn describe(&self) -> String {
        match &self.automation {
            None => String::new(),
            Some((nets, role)) => {
                let role = role.map_or_else(String::new, |r| format!(" max_role={r}"));
                format!(" automation=yes from={nets}{role}")
            }
        }
    }
}

impl Services {
    /// Keys of `user`, or by default: the actor's own keys, or for owners and admins every key
    /// they manage (their tenant; admins: all).
    pub async fn key_list(&self, actor: &Actor, user: Option<&Name>) -> Result<Vec<Key>> {
        let rows = match user {
            Some(name) => {
                let row = self.key_subject(actor, Some(name), Verb::Read).await?;
                self.db.keys(Some(row.id), None).await?
            }
            None if actor.role >= crate::domain::Role::Owner => {
                let tenant = (!actor.is_admin()).then_some(actor.tenant_id);
                self.db.keys(None, tenant).await?
            }
            None => match actor.user_id {
                Some(id) => self.db.keys(Some(id), None).await?,
                None => Vec::new(),
            },
        };
        Ok(rows.into_iter().map(Key::from).collect())
    }

    /// The user whose keys are acted on: `--user NAME`, or the actor itself.
    async fn key_subject(&self, actor: &Actor, user: Option<&Name>, verb: Verb) -> Result<UserRow> {
        let what = user.map_or_else(|| "your user".to_owned(), |n| format!("user {n}"));
        let row = match user {
            Some(name) => self.db.user_by_name(name.as_str()).await?,
            None => match actor.user_id {
                Some(id) => self.db.user_by_id(id).await?,
                None => {
                    return Err(Error::usage(
                        "the local administrator has no keys of its own; use --user NAME",
                    ));
                }
            },
        };
        let owner = match &row {
            Some(r) if actor.is_user(r.id) => Owner::OwnUser,
            Some(r) => Owner::Tenant(r.tenant_id),
            None => Owner::Tenant(actor.tenant_id),
        };
        policy::check(actor, Resource::Key, verb, owner, &what)?;
        let row = row.ok_or_else(|| policy::not_found(&what))?;
        if verb == Verb::Write {
            actor.refuse_automation("add or remove keys")?;
            super::users::refuse_peer_or_above(actor, &row, "keys")?;
        }
        Ok(row)
    }

    /// Adds one or more keys to a user, all or none.
    pub async fn key_add(
        &self,
        actor: &Actor,
        user: Option<&Name>,
        keys: &[SshPublicKey],
        options: &KeyOptions,
    ) -> Result<Vec<Key>> {
        let target = user.map_or_else(|| actor.user.clone(), |n| n.to_string());
        self.audited(actor, "key.add", &target, async {
            let subject = self.key_subject(actor, user, Verb::Write).await?;
            if let Some((_, Some(cap))) = &options.automation {
                let role = Role::parse(&subject.role)?;
                if *cap > role {
                    return Err(Error::invalid(format!(
                        "an automation key cannot act above its user's role ({role}); use --role {role} or lower"
                    )));
                }
            }
            let mut tx = self.db.begin().await?;
            let added = insert_keys(&mut tx, subject.id, keys, options).await?;
            for fingerprint in &added {
                let detail = format!("fingerprint={fingerprint}{}", options.describe());
                record_ok(
                    &mut tx,
                    actor,
                    &subject.tenant,
                    "key.add",
                    &subject.name,
                    &detail,
                )
                .await?;
            }
            tx.commit().await?;
            let mut result = Vec::new();
            for fingerprint in added {
                if let Some(row) = self.db.key_by_fingerprint(&fingerprint).await? {
                    result.push(Key::from(row));
                }
            }
            Ok(result)
        })
        .await
    }

    /// Finds a key the actor may remove; hidden keys read as not found.
    pub(super) async fn visible_key(&self, actor: &Actor, fingerprint: &str) -> Result<KeyRow> {
        let what = format!("key {}", crate::domain::printable(fingerprint));
        let row = self.db.key_by_fingerprint(fingerprint).await?;
        let owner = match &row {
            Some(r) if actor.is_user(r.user_id) => Owner::OwnUser,
            Some(r) => Owner::Tenant(r.tenant_id),
            None => Owner::Tenant(actor.tenant_id),
        };
        policy::check(actor, Resource::Key, Verb::Write, owner, &what)?;
        row.ok_or_else(|| policy::not_found(&what))
    }

    pub async fn key_remove(&self, actor: &Actor, fingerprint: &str) -> Result<Key> {
        self.audited(actor, "key.remove", fingerprint, async {
            let row = self.visible_key(actor, fingerprint).await?;
            actor.refuse_automation("add or remove keys")?;
            if let Some(owner) = self.db.user_by_id(row.user_id).await? {
                super::users::refuse_peer_or_above(actor, &owner, "keys")?;
            }
            if actor.is_user(row.user_id) && self.db.keys(Some(row.user_id), None).await?.len() <= 1
            {
                return Err(conflict(
                    "this is your last key; add another one first so you can still log in",
                ));
            }
            let mut tx = self.db.begin().await?;
            tx.delete_key(row.id).await?;
            record_ok(
                &mut tx,
                actor,
                &row.tenant,
                "key.remove",
                fingerprint,
                &format!("user={}", row.user),
            )
            .await?;
            tx.commit().await?;
            Ok(Key::from(row))
        })
        .await
    }
}

/// Inserts keys for a user inside `tx`, all or none: a key already registered (to anyone) or
/// given twice is a conflict. Returns the fingerprints added.
pub(super) async fn insert_keys(
    tx: &mut Tx,
    user_id: i64,
    keys: &[SshPublicKey],
    options: &KeyOptions,
) -> Result<Vec<String>> {
    let (automation, allowed_from, max_role) = match &options.automation {
        Some((nets, role)) => (true, nets.to_string(), role.map(Role::as_str)),
        None => (false, String::new(), None),
    };
    let mut added: Vec<String> = Vec::new();
    for key in keys {
        if tx.key_exists(key.fingerprint()).await? || added.iter().any(|f| f == key.fingerprint()) {
            return Err(conflict(format!(
                "key {} is already registered (a key belongs to one user only)",
                key.fingerprint()
            )));
        }
        let text = key.openssh()?;
        let algorithm = key.algorithm();
        tx.insert_key(&NewKey {
            user_id,
            fingerprint: key.fingerprint(),
            algorithm: &algorithm,
            public_key: &text,
            comment: key.comment(),
            automation,
            allowed_from: &allowed_from,
            max_role,
        })
        .await?;
        added.push(key.fingerprint().to_owned());
    }
    Ok(added)
}

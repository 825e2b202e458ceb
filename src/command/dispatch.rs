//! Dispatch: argv → clap → validated arguments → service call → rendered outcome.

use super::help;
use super::io::{CommandIo, Invocation};
use super::output::{self, Format, Outcome, Rendered, done, list, object};
use super::tree::*;
use crate::domain::{
    DomainName, Name, PhpVersion, Role, SessionId, SiteKind, SourceNets, SshPublicKey, Upstream,
    parse_age,
};
use crate::error::{Error, Result};
use crate::service::{
    Actor, AuditQuery, DeleteTarget, KeyOptions, Services, SiteCreate, UserCreate,
};
use clap::FromArgMatches;

const TENANT_COLUMNS: &[&str] = &["name", "users", "sites", "created_at"];
const USER_COLUMNS: &[&str] = &["name", "tenant", "role", "locked", "keys", "created_at"];
const KEY_COLUMNS: &[&str] = &[
    "fingerprint",
    "user",
    "algorithm",
    "comment",
    "automation",
    "last_used_at",
];
const PHP_COLUMNS: &[&str] = &["version", "default", "binary"];
const SITE_COLUMNS: &[&str] = &[
    "domain", "tenant", "type", "php", "status", "aliases", "server",
];
pub(super) const AUDIT_COLUMNS: &[&str] = &[
    "seq", "at", "actor", "tenant", "action", "target", "result", "source", "flag",
];
const SESSION_COLUMNS: &[&str] = &[
    "id",
    "user",
    "tenant",
    "role",
    "source",
    "key_fingerprint",
    "started_at",
    "commands",
];
pub(super) const SERVER_COLUMNS: &[&str] = &[
    "name", "provider", "status", "type", "location", "ipv4", "sites", "cpu_pct", "load1",
];
const METRIC_COLUMNS: &[&str] = &[
    "at",
    "cpu_pct",
    "load1",
    "mem_used_bytes",
    "disk_used_bytes",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
];

/// Runs one command line as `actor` and returns what it printed and its exit code.
pub async fn run<I: CommandIo>(
    services: &Services,
    actor: &Actor,
    argv: &[String],
    io: &mut I,
    invocation: &Invocation,
) -> Outcome {
    let format = help::format_in(argv);
    let prefix = invocation.prefix.as_str();
    let mut tree = help::command(prefix);
    let parsed = tree
        .try_get_matches_from_mut(argv)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => return help::clap_outcome(err, prefix, format),
    };
    services.session_command(actor);
    // Audit rows written while the command runs record its line, secrets masked.
    let line = super::mask::masked_line(&mut tree, argv);
    let executed = execute(services, actor, cli.command, io, invocation, cli.output);
    match crate::service::with_command_line(line, executed).await {
        Ok(rendered) => output::render(rendered, cli.output),
        Err(err) => output::render_error(&err, cli.output),
    }
}

async fn execute<I: CommandIo>(
    services: &Services,
    actor: &Actor,
    command: Command,
    io: &mut I,
    invocation: &Invocation,
    format: Format,
) -> Result<Rendered> {
    match command {
        Command::Whoami => Ok(whoami(services, actor, format)),
        Command::Version => Ok(version(format)),
        Command::Help { words } => Ok(Rendered::Text(help::help_for(&invocation.prefix, &words)?)),
        Command::Dashboard => Ok(object(&services.dashboard(actor).await?)),
        Command::Tenant(cmd) => tenant(services, actor, cmd, io).await,
        Command::User(cmd) => user(services, actor, cmd, io, format).await,
        Command::Key(cmd) => key(services, actor, cmd, io).await,
        Command::Totp(cmd) => super::second_factor::totp(services, actor, cmd, format).await,
        Command::Site(cmd) => site(services, actor, cmd, io, format).await,
        Command::Php(PhpCommand::List) => Ok(list(
            &services.php_list(actor).await?,
            PHP_COLUMNS,
            "no PHP-FPM version is installed",
        )),
        Command::Host(HostCommand::Reconcile { no_wait: false }) => {
            let report = services.host_reconcile(actor).await?;
            Ok(object(&report))
        }
        Command::Host(HostCommand::Reconcile { no_wait: true }) => {
            let job = services.host_reconcile_enqueue(actor).await?;
            Ok(super::jobs::queued(&job, format))
        }
        Command::Job(cmd) => super::jobs::job(services, actor, cmd, io, format).await,
        Command::Server(cmd) => super::servers::server(services, actor, cmd, io, format).await,
        Command::Metrics(args) => {
            let since = parse_age(&args.since)?;
            let step = args.step.as_deref().map(parse_age).transpose()?;
            Ok(list(
                &services
                    .server_metrics(actor, &args.server, since, step)
                    .await?,
                METRIC_COLUMNS,
                "no samples in that range",
            ))
        }
        Command::Ui(cmd) => super::ui::ui(services, actor, cmd, io, format).await,
        Command::Session(cmd) => session(services, actor, cmd, io).await,
        Command::Audit(AuditCommand::List {
            since,
            user,
            action,
            suspicious,
            limit,
            follow: true,
        }) => {
            let query = audit_query(since, user, action, suspicious, limit)?;
            super::follow::audit(services, actor, query, io, format).await
        }
        Command::Audit(cmd) => audit(services, actor, cmd).await,
        Command::Shell => Err(Error::usage(format!(
            "`shell` starts the interactive shell, which needs a terminal: {} shell",
            invocation.prefix.replacen("ssh ", "ssh -t ", 1)
        ))),
        Command::Tui => Err(Error::usage(format!(
            "`tui` opens the dashboard, which needs a terminal: {}",
            invocation.prefix.replacen("ssh ", "ssh -t ", 1)
        ))),
    }
}

/// Like whoami(1), the table form is just the user name; json and plain carry every field.
fn whoami(services: &Services, actor: &Actor, format: Format) -> Rendered {
    let me = services.whoami(actor);
    match format {
        Format::Table => Rendered::Text(format!("{}\n", me.user)),
        _ => object(&me),
    }
}

fn version(format: Format) -> Rendered {
    let version = env!("CARGO_PKG_VERSION");
    match format {
        Format::Table => Rendered::Text(format!("vipanel {version}\n")),
        _ => object(&serde_json::json!({"name": "vipanel", "version": version})),
    }
}

async fn tenant<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    cmd: TenantCommand,
    io: &mut I,
) -> Result<Rendered> {
    match cmd {
        TenantCommand::List => Ok(list(
            &s.tenant_list(actor).await?,
            TENANT_COLUMNS,
            "no tenants",
        )),
        TenantCommand::Show { name } => {
            Ok(object(&s.tenant_show(actor, &tenant_name(&name)?).await?))
        }
        TenantCommand::Create { name } => {
            Ok(object(&s.tenant_create(actor, &tenant_name(&name)?).await?))
        }
        TenantCommand::Delete { name, confirm } => {
            let name = tenant_name(&name)?;
            confirmed(
                s,
                actor,
                io,
                confirm.yes,
                DeleteTarget::Tenant(&name),
                format!("Delete tenant {name}"),
            )
            .await?;
            let gone = s.tenant_delete(actor, &name).await?;
            Ok(done(format!("deleted tenant {name}"), &gone))
        }
    }
}

async fn user<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    cmd: UserCommand,
    io: &mut I,
    format: Format,
) -> Result<Rendered> {
    match cmd {
        UserCommand::List { tenant } => {
            let tenant = tenant.as_deref().map(tenant_name).transpose()?;
            Ok(list(
                &s.user_list(actor, tenant.as_ref()).await?,
                USER_COLUMNS,
                "no users",
            ))
        }
        UserCommand::Show { name } => Ok(object(&s.user_show(actor, &user_name(&name)?).await?)),
        UserCommand::Create {
            name,
            role,
            tenant,
            keys,
        } => {
            let req = UserCreate {
                name: user_name(&name)?,
                role: Role::parse(&role)?,
                tenant: tenant.as_deref().map(tenant_name).transpose()?,
                keys: keys
                    .iter()
                    .map(|k| SshPublicKey::parse(k))
                    .collect::<Result<_>>()?,
            };
            Ok(object(&s.user_create(actor, req).await?))
        }
        UserCommand::Delete { name, confirm } => {
            let name = user_name(&name)?;
            let question = format!("Delete user {name} and its keys");
            confirmed(
                s,
                actor,
                io,
                confirm.yes,
                DeleteTarget::User(&name),
                question,
            )
            .await?;
            let gone = s.user_delete(actor, &name).await?;
            Ok(done(format!("deleted user {name}"), &gone))
        }
        UserCommand::Role { name, role } => Ok(object(
            &s.user_set_role(actor, &user_name(&name)?, Role::parse(&role)?)
                .await?,
        )),
        UserCommand::Lock { name } => Ok(object(
            &s.user_set_locked(actor, &user_name(&name)?, true).await?,
        )),
        UserCommand::Unlock { name } => Ok(object(
            &s.user_set_locked(actor, &user_name(&name)?, false).await?,
        )),
        UserCommand::EnrollCode { name } => Ok(super::second_factor::enroll_code(
            &s.user_enroll_code(actor, &user_name(&name)?).await?,
            format,
        )),
    }
}

async fn key<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    cmd: KeyCommand,
    io: &mut I,
) -> Result<Rendered> {
    match cmd {
        KeyCommand::List { user } => {
            let user = user.as_deref().map(user_name).transpose()?;
            Ok(list(
                &s.key_list(actor, user.as_ref()).await?,
                KEY_COLUMNS,
                "no keys",
            ))
        }
        KeyCommand::Add {
            user,
            key,
            automation,
            from,
            role,
        } => {
            let user = user.as_deref().map(user_name).transpose()?;
            let options = match (automation, from) {
                (true, Some(from)) => KeyOptions {
                    automation: Some((
                        SourceNets::parse(&from)?,
                        role.as_deref().map(Role::parse).transpose()?,
                    )),
                },
                _ => KeyOptions::default(),
            };
            let text = if key.is_empty() {
                let limit = usize::try_from(s.config.limits.max_stdin_bytes).unwrap_or(usize::MAX);
                let bytes = io.read_stdin(limit).await?;
                String::from_utf8(bytes)
                    .map_err(|_| Error::invalid("standard input is not UTF-8 text"))?
            } else {
                key.join(" ")
            };
            if text.trim().is_empty() {
                return Err(Error::usage(
                    "no public key given: pass it as an argument or on standard input (key add < id_ed25519.pub)",
                ));
            }
            let keys = SshPublicKey::parse_many(&text)?;
            Ok(list(
                &s.key_add(actor, user.as_ref(), &keys, &options).await?,
                KEY_COLUMNS,
                "no keys added",
            ))
        }
        KeyCommand::Remove {
            fingerprint,
            confirm,
        } => {
            let question = format!("Remove key {fingerprint}");
            confirmed(
                s,
                actor,
                io,
                confirm.yes,
                DeleteTarget::Key(&fingerprint),
                question,
            )
            .await?;
            let gone = s.key_remove(actor, &fingerprint).await?;
            Ok(done(
                format!("removed key {} of user {}", gone.fingerprint, gone.user),
                &gone,
            ))
        }
    }
}

async fn site<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    cmd: SiteCommand,
    io: &mut I,
    format: Format,
) -> Result<Rendered> {
    match cmd {
        SiteCommand::List { tenant } => {
            let tenant = tenant.as_deref().map(tenant_name).transpose()?;
            Ok(list(
                &s.site_list(actor, tenant.as_ref()).await?,
                SITE_COLUMNS,
                "no sites",
            ))
        }
        SiteCommand::Show { domain } => Ok(object(
            &s.site_show(actor, &DomainName::parse(&domain)?).await?,
        )),
        SiteCommand::Create(args) => {
            let req = SiteCreate {
                domain: DomainName::parse(&args.domain)?,
                kind: SiteKind::parse(&args.kind)?,
                php: args.php.as_deref().map(PhpVersion::parse).transpose()?,
                aliases: args
                    .aliases
                    .iter()
                    .map(|a| DomainName::parse(a))
                    .collect::<Result<_>>()?,
                upstream: args.upstream.as_deref().map(Upstream::parse).transpose()?,
                tenant: args.tenant.as_deref().map(tenant_name).transpose()?,
            };
            Ok(object(&s.site_create(actor, req).await?))
        }
        SiteCommand::Delete {
            domain,
            purge,
            confirm,
        } => {
            let domain = DomainName::parse(&domain)?;
            let question = format!(
                "Delete site {domain}{}",
                if purge { " and its files" } else { "" }
            );
            confirmed(
                s,
                actor,
                io,
                confirm.yes,
                DeleteTarget::Site(&domain),
                question,
            )
            .await?;
            let gone = s.site_delete(actor, &domain, purge).await?;
            Ok(done(format!("deleted site {domain}"), &gone))
        }
        SiteCommand::Enable { domain } => Ok(object(
            &s.site_set_enabled(actor, &DomainName::parse(&domain)?, true)
                .await?,
        )),
        SiteCommand::Disable { domain } => Ok(object(
            &s.site_set_enabled(actor, &DomainName::parse(&domain)?, false)
                .await?,
        )),
        SiteCommand::Php { domain, version } => {
            let domain = DomainName::parse(&domain)?;
            let version = PhpVersion::parse(&version)?;
            Ok(object(&s.site_set_php(actor, &domain, version).await?))
        }
        SiteCommand::Alias(cmd) => {
            let (domain, name, add) = match cmd {
                AliasCommand::Add { domain, name } => (domain, name, true),
                AliasCommand::Remove { domain, name } => (domain, name, false),
            };
            let domain = DomainName::parse(&domain)?;
            let name = DomainName::parse(&name)?;
            Ok(object(&s.site_alias(actor, &domain, &name, add).await?))
        }
        SiteCommand::Apply { domain } => Ok(object(
            &s.site_apply(actor, &DomainName::parse(&domain)?).await?,
        )),
        SiteCommand::Logs {
            domain,
            error,
            lines,
            follow,
        } => {
            let request = super::follow::LogRequest {
                domain: DomainName::parse(&domain)?,
                error,
                lines,
                follow,
            };
            super::follow::site_logs(s, actor, request, io, format).await
        }
    }
}

async fn audit(s: &Services, actor: &Actor, cmd: AuditCommand) -> Result<Rendered> {
    match cmd {
        AuditCommand::List {
            since,
            user,
            action,
            suspicious,
            limit,
            follow: _,
        } => {
            let query = audit_query(since, user, action, suspicious, limit)?;
            Ok(list(
                &s.audit_list(actor, &query).await?,
                AUDIT_COLUMNS,
                "no audit entries",
            ))
        }
        AuditCommand::Verify => Ok(object(&s.audit_verify(actor).await?)),
        AuditCommand::Prune => {
            let pruned = s.audit_prune(actor).await?;
            let message = match (pruned.retention_days, pruned.through_seq) {
                (0, _) => "nothing pruned: retention is off (audit.retention_days = 0)".to_owned(),
                (days, None) => format!("nothing pruned: no entry is older than {days} days"),
                (days, Some(seq)) => format!(
                    "pruned {} entries older than {days} days (up to seq {seq}; a checkpoint keeps the rest verifiable)",
                    pruned.rows
                ),
            };
            Ok(done(message, &pruned))
        }
    }
}

async fn session<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    cmd: SessionCommand,
    io: &mut I,
) -> Result<Rendered> {
    match cmd {
        SessionCommand::List => Ok(list(
            &s.session_list(actor)?,
            SESSION_COLUMNS,
            "no sessions",
        )),
        SessionCommand::Kill { id, confirm } => {
            let id = SessionId::parse(&id)?;
            confirmed(
                s,
                actor,
                io,
                confirm.yes,
                DeleteTarget::Session(&id),
                format!("Kill session {id}"),
            )
            .await?;
            let killed = s.session_kill(actor, &id).await?;
            Ok(done(
                format!(
                    "killed session {id} of {} from {}",
                    killed.user, killed.source
                ),
                &killed,
            ))
        }
    }
}

/// Checks the deletion is allowed, then asks (on a terminal) or requires `--yes` (without one).
pub(super) async fn confirmed<I: CommandIo>(
    s: &Services,
    actor: &Actor,
    io: &mut I,
    yes: bool,
    target: DeleteTarget<'_>,
    question: String,
) -> Result<()> {
    s.check_delete(actor, target).await?;
    if yes {
        return Ok(());
    }
    if !io.has_tty() {
        return Err(Error::usage(format!(
            "{question}? This cannot be undone: add --yes to confirm (there is no terminal to ask on)"
        )));
    }
    if io
        .confirm(&format!("{question}? This cannot be undone. [y/N] "))
        .await?
    {
        Ok(())
    } else {
        Err(Error::usage("not confirmed; nothing was changed"))
    }
}

/// The filters of `audit list`, validated.
fn audit_query(
    since: Option<String>,
    user: Option<String>,
    action: Option<String>,
    suspicious: bool,
    limit: i64,
) -> Result<AuditQuery> {
    if !(1..=10_000).contains(&limit) {
        return Err(Error::invalid("--limit must be from 1 to 10000"));
    }
    Ok(AuditQuery {
        since: since.as_deref().map(parse_age).transpose()?,
        user: user.as_deref().map(user_name).transpose()?,
        action,
        suspicious,
        limit,
    })
}

fn user_name(input: &str) -> Result<Name> {
    Name::parse(input, "user name")
}

fn tenant_name(input: &str) -> Result<Name> {
    Name::parse(input, "tenant name")
}

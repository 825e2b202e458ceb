//! The command tree: one clap grammar shared by SSH exec, the shell, the TUI and `vipanel admin`.
//!
//! Shape `NOUN VERB ARGS [FLAGS]`; `ls` is an alias of `list`, `rm` of `delete`/`remove`.
//! Arguments are taken as text here and validated by the domain types in the dispatcher, so a bad
//! value is exit 5 (invalid) while a bad flag or a missing argument is exit 2 (usage).

use super::output::Format;
use clap::{Args, Parser, Subcommand};

const ROOT_AFTER_HELP: &str = "\
Examples:
  {prefix} whoami
  {prefix} site create example.com --php 8.2
  {prefix} site list -o json
  {prefix} key add < ~/.ssh/id_ed25519.pub
  {prefix} help site create

Flags go after the command words. Exit codes: 0 ok, 2 usage, 3 not found, 4 conflict,
5 invalid input, 6 permission denied, 7 locked, 8 dependency failed, 9 integrity check failed,
1 internal error.";

#[derive(Debug, Parser)]
#[command(
    name = "vipanel",
    no_binary_name = true,
    disable_help_subcommand = true,
    disable_version_flag = true,
    subcommand_required = true,
    arg_required_else_help = true,
    about = "vipanel: a web-hosting control panel over SSH",
    after_help = ROOT_AFTER_HELP,
)]
pub struct Cli {
    /// Output format: table (default), json or plain.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show who you are logged in as: user, tenant, role, key and source address.
    Whoami,
    /// Show the vipanel version.
    Version,
    /// Show help for the whole tree or one command (e.g. `help site create`).
    Help {
        /// The command words to explain.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Counts of tenants, users, keys, servers and sites you can see.
    Dashboard,
    /// Tenants (customer accounts). Creating and deleting them is for admins.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Users of a tenant and their roles (owners and admins).
    #[command(subcommand)]
    User(UserCommand),
    /// SSH public keys. Everyone manages its own; owners those of their tenant.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Your authenticator (TOTP), recovery codes; resetting another user's (owners, admins).
    #[command(subcommand)]
    Totp(TotpCommand),
    /// Websites (nginx vhosts with PHP-FPM, static files or a reverse proxy).
    #[command(subcommand)]
    Site(SiteCommand),
    /// PHP-FPM versions installed on the host.
    #[command(subcommand)]
    Php(PhpCommand),
    /// The host itself: rebuilding what the panel manages from its database (admins).
    #[command(subcommand)]
    Host(HostCommand),
    /// Servers: the panel host itself is `local`; cloud servers are ordered, resized, powered
    /// and deleted through their provider, as jobs.
    #[command(subcommand)]
    Server(ServerCommand),
    /// A server's CPU, load, memory, disk and network over time (averages per --step).
    #[command(
        after_help = "Examples:\n  {prefix} metrics local\n  {prefix} metrics local --since 24h --step 15m\n  \
        {prefix} metrics local --since 5m -o json\n\n\
        Ranges up to metrics.raw_retention_hours (24h) read every sample; up to\n\
        metrics.five_minute_retention_days (30d) 5-minute averages; longer ones hourly averages.\n\
        Without --step a range is cut into about 300 points."
    )]
    Metrics(MetricsArgs),
    /// Who is connected: live sessions, and disconnecting one.
    #[command(subcommand)]
    Session(SessionCommand),
    /// The audit trail: who did what, from where, with what result (tamper-evident).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Background jobs: long work queued in the database and run by the daemon's workers.
    #[command(subcommand)]
    Job(JobCommand),
    /// Your preferences for the interactive dashboard (TUI): theme, keymap, refresh interval,
    /// bandwidth; themes and keymaps of your own.
    #[command(subcommand)]
    Ui(UiCommand),
    /// Start the interactive shell (needs a terminal: `ssh -t … shell`; `!` in the dashboard
    /// switches to it).
    Shell,
    /// Open the dashboard (needs a terminal; a login without a command opens it, and `tui` in
    /// the shell comes back to it).
    Tui,
}

#[derive(Debug, Args)]
pub struct Confirm {
    /// Do not ask for confirmation (required when there is no terminal to ask on).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// List tenants (yours; admins see all).
    #[command(visible_alias = "ls")]
    List,
    /// Show one tenant.
    Show { name: String },
    /// Create a tenant (admins).
    #[command(after_help = "Example:\n  {prefix} tenant create acme")]
    Create { name: String },
    /// Delete an empty tenant (admins).
    #[command(visible_alias = "rm")]
    Delete {
        name: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List users of your tenant (admins: all, or --tenant T).
    #[command(visible_alias = "ls")]
    List {
        /// Only users of this tenant (admins).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show one user.
    Show { name: String },
    /// Create a user with a role, optionally with its first keys.
    #[command(
        after_help = "Examples:\n  {prefix} user create alice --role owner --tenant acme\n  \
        {prefix} \"user create bob --role operator --key 'ssh-ed25519 AAAA… bob@laptop'\"\n  \
        {prefix} key add --user bob < bob.pub"
    )]
    Create {
        name: String,
        /// admin, owner, operator or viewer.
        #[arg(long)]
        role: String,
        /// Create the user in this tenant (admins; default: your tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// A public key for the user (repeatable; quote it).
        #[arg(long = "key")]
        keys: Vec<String>,
    },
    /// Delete a user and its keys.
    #[command(visible_alias = "rm")]
    Delete {
        name: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Change a user's role.
    Role { name: String, role: String },
    /// Lock a user: its keys stop working until it is unlocked.
    Lock { name: String },
    /// Unlock a user: lifts a lock and a lockout after too many wrong codes.
    Unlock { name: String },
    /// Issue a new one-time enrollment code for a user without an authenticator (shown once;
    /// the previous code stops working).
    #[command(
        name = "enroll-code",
        after_help = "Example:\n  {prefix} user enroll-code alice\n\n\
        Give the code to the user; at its first interactive login (`ssh -t …`) it types the code,\n\
        scans the QR code with an authenticator app and confirms with one code."
    )]
    EnrollCode { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Set up a new authenticator secret (active at once) with new recovery codes: yours, or
    /// (admins) another user's for provisioning. Prints the secret and otpauth URI once.
    #[command(
        after_help = "Examples:\n  {prefix} totp enroll\n  {prefix} totp enroll alice -o json\n\n\
        The old secret and recovery codes stop working at once: add the new secret to your app\n\
        before you log out."
    )]
    Enroll { user: Option<String> },
    /// Remove a user's authenticator and recovery codes and issue a new enrollment code, so it
    /// enrolls again at its next login (owners in their tenant, admins).
    #[command(after_help = "Example:\n  {prefix} totp reset alice")]
    Reset { user: String },
    /// Replace your recovery codes with ten new ones (shown once).
    #[command(name = "recovery-codes")]
    RecoveryCodes,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List keys: yours (owners: your tenant's; admins: all), or one user's.
    #[command(visible_alias = "ls")]
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Add public keys, from the argument or from standard input.
    #[command(
        after_help = "Examples:\n  {prefix} key add < ~/.ssh/id_ed25519.pub\n  \
        {prefix} key add --user bob < bob.pub\n  {prefix} key add ssh-ed25519 AAAA… me@laptop\n  \
        {prefix} key add --automation --from 192.0.2.0/24 --role operator < ci.pub"
    )]
    Add {
        /// Add the key to this user (owners and admins; default: you).
        #[arg(long)]
        user: Option<String>,
        /// An automation key (CI, cron): no verification code, usable only from --from.
        #[arg(long, requires = "from")]
        automation: bool,
        /// Networks the automation key may log in from: CIDRs or addresses, comma separated.
        #[arg(long, requires = "automation", value_name = "CIDR[,CIDR…]")]
        from: Option<String>,
        /// The highest role the automation key acts with (never above its user's).
        #[arg(long, requires = "automation")]
        role: Option<String>,
        /// The public key; read from standard input when absent.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        key: Vec<String>,
    },
    /// Remove a key by its fingerprint (SHA256:…).
    #[command(visible_alias = "rm")]
    Remove {
        fingerprint: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// List sites of your tenant (admins: all, or --tenant T).
    #[command(visible_alias = "ls")]
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show one site.
    Show { domain: String },
    /// Create a site and apply it to the host (nginx, PHP-FPM, its own system user); returns
    /// when it serves.
    #[command(
        after_help = "Examples:\n  {prefix} site create example.com --php 8.2 --alias www.example.com\n  \
        {prefix} site create docs.example.com --type static\n  \
        {prefix} site create app.example.com --type proxy --upstream http://127.0.0.1:3000\n\n\
        Files go in the site's public/ directory (see `site show`: system_user owns them). If the\n\
        host rejects the configuration, nothing changes there and the exit status is 8."
    )]
    Create(SiteCreateArgs),
    /// Delete a site: its vhost, PHP-FPM pool and system user; with --purge its files and logs.
    #[command(
        visible_alias = "rm",
        after_help = "Examples:\n  {prefix} site delete old.example.com --yes\n  \
        {prefix} site delete old.example.com --purge --yes\n\n\
        Without --purge the site's home, logs and hooks are moved aside into .deleted/, root's."
    )]
    Delete {
        domain: String,
        /// Also delete the site's files (its home), logs and include hooks.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Serve a disabled site again.
    Enable { domain: String },
    /// Stop serving a site: it answers 503 and its PHP-FPM pool stops; files stay.
    Disable { domain: String },
    /// Move a PHP site to another installed PHP version (see `php list`).
    #[command(after_help = "Example:\n  {prefix} site php example.com 8.2")]
    Php { domain: String, version: String },
    /// Other names a site answers to.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Render and apply a site again, e.g. after fixing one of its include hooks.
    #[command(after_help = "Example:\n  {prefix} site apply example.com\n\n\
        Include hooks: put your own nginx directives in <nginx_dir>/custom.d/DOMAIN/*.conf on the\n\
        host; every apply includes them and never changes them.")]
    Apply { domain: String },
    /// Show the end of a site's nginx access log (or error log).
    #[command(
        after_help = "Examples:\n  {prefix} site logs example.com --lines 50\n  \
        {prefix} site logs example.com --error --follow"
    )]
    Logs {
        domain: String,
        /// The error log instead of the access log.
        #[arg(long)]
        error: bool,
        /// How many of the last lines to show.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
        /// Keep showing new lines as they are written, until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Let the site answer to another name too.
    #[command(after_help = "Example:\n  {prefix} site alias add example.com www.example.com")]
    Add { domain: String, name: String },
    /// Stop answering to a name.
    #[command(visible_alias = "rm")]
    Remove { domain: String, name: String },
}

#[derive(Debug, Subcommand)]
pub enum PhpCommand {
    /// The PHP-FPM versions installed on the host (new sites take the newest).
    #[command(visible_alias = "ls")]
    List,
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Rebuild every site's files from the database, remove managed files and site accounts
    /// that belong to no site, finish interrupted deletions; reload once. Safe to repeat.
    #[command(after_help = "Examples:\n  {prefix} host reconcile -o json\n  \
        {prefix} host reconcile --no-wait -o json\n\n\
        With --no-wait the reconcile is queued as a job (host.reconcile) and its id printed at\n\
        once (JSON: the job); follow it with `job watch ID`.")]
    Reconcile {
        /// Queue the reconcile as a background job and print its id instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// List jobs, newest first: your tenant's (admins: all, platform jobs included).
    #[command(
        visible_alias = "ls",
        after_help = "Examples:\n  {prefix} job list\n  \
        {prefix} job list --state failed -o json\n  {prefix} job list --kind host.reconcile --limit 5"
    )]
    List {
        /// Only jobs in this state: queued, running, succeeded, failed or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this kind, like host.reconcile.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many jobs (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one job: state, progress, attempts, result or error.
    #[command(after_help = "Example:\n  {prefix} job show 42 -o json")]
    Show {
        /// The job's id, as `job list` shows it.
        id: String,
    },
    /// Follow a job until it ends: progress lines on stderr, then the job.
    #[command(after_help = "Example:\n  {prefix} job watch 42\n\n\
        Exit status: 0 the job succeeded, 8 it failed, 4 it was cancelled. With -o json the\n\
        final job is printed as one object. Ctrl-C stops watching, not the job.")]
    Watch {
        /// The job's id.
        id: String,
    },
    /// Cancel a job: a queued one at once, a running one at its next checkpoint
    /// (operators and above).
    #[command(after_help = "Example:\n  {prefix} job cancel 42 --yes")]
    Cancel {
        /// The job's id.
        id: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Queue a failed or cancelled job again, its attempts reset (operators and above).
    #[command(after_help = "Example:\n  {prefix} job retry 42")]
    Retry {
        /// The job's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct SiteCreateArgs {
    pub domain: String,
    /// php (default), static or proxy.
    #[arg(long = "type", default_value = "php")]
    pub kind: String,
    /// PHP version for a php site (default: the newest installed, else host.default_php).
    #[arg(long)]
    pub php: Option<String>,
    /// Another name the site answers to (repeatable).
    #[arg(long = "alias")]
    pub aliases: Vec<String>,
    /// Where a proxy site forwards to: http(s)://IP:PORT or localhost, like http://127.0.0.1:3000.
    #[arg(long)]
    pub upstream: Option<String>,
    /// Create the site in this tenant (admins).
    #[arg(long)]
    pub tenant: Option<String>,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// The server (`local` is the panel host; see `server list`).
    pub server: String,
    /// How far back: 90s, 30m, 12h, 7d, 2w.
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// The width of each point (averages of the samples in it): 10s, 1m, 1h…
    #[arg(long)]
    pub step: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// List servers you can see.
    #[command(visible_alias = "ls")]
    List,
    /// Show one server (`local` is the panel host); a cloud server's status is asked of its
    /// provider first.
    Show { name: String },
    /// Order a cloud server; waits until it runs (progress on stderr) and shows it.
    #[command(
        after_help = "Examples:\n  {prefix} server create web1 --provider hetzner --type cx22 --location fsn1 --image ubuntu-24.04\n  \
        {prefix} server create web2 --provider hetzner --type cx22 --location nbg1 --image debian-12 --no-wait\n\n\
        The order runs as a job (server.create): with --no-wait its id is printed at once (-o json:\n\
        the job); follow it with `job watch ID`. See `server types|locations|images` for the words\n\
        the provider accepts."
    )]
    Create(ServerCreateArgs),
    /// Delete a cloud server and everything on its disk (asks first).
    #[command(
        visible_alias = "rm",
        after_help = "Examples:\n  {prefix} server delete web1 --yes\n  {prefix} server delete web1 --yes --no-wait -o json"
    )]
    Delete {
        name: String,
        #[command(flatten)]
        confirm: Confirm,
        #[command(flatten)]
        wait: NoWait,
    },
    /// Reboot a cloud server.
    #[command(
        after_help = "Examples:\n  {prefix} server reboot web1\n  {prefix} server reboot web1 --no-wait"
    )]
    Reboot {
        name: String,
        #[command(flatten)]
        wait: NoWait,
    },
    /// Change a cloud server's type; a running server is powered off for it and on again (asks
    /// first).
    #[command(
        after_help = "Examples:\n  {prefix} server resize web1 cx32 --yes\n  {prefix} server resize web1 cx22 --yes --no-wait\n\n\
        The disk keeps its size, so a server can be resized back down."
    )]
    Resize {
        name: String,
        /// The new server type, like cx32 (see `server types`).
        server_type: String,
        #[command(flatten)]
        confirm: Confirm,
        #[command(flatten)]
        wait: NoWait,
    },
    /// Power a cloud server on, or off (a hard stop, not a shutdown).
    #[command(
        after_help = "Examples:\n  {prefix} server power web1 off\n  {prefix} server power web1 on --no-wait"
    )]
    Power {
        name: String,
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
        #[command(flatten)]
        wait: NoWait,
    },
    /// Server types a provider sells, with prices per location.
    #[command(
        after_help = "Examples:\n  {prefix} server types\n  {prefix} server types --provider hetzner -o json"
    )]
    Types {
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Locations a provider has servers in.
    #[command(after_help = "Example:\n  {prefix} server locations -o json")]
    Locations {
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Images a provider installs servers from.
    #[command(after_help = "Example:\n  {prefix} server images --provider hetzner")]
    Images {
        #[command(flatten)]
        provider: ProviderArg,
    },
}

#[derive(Debug, Args)]
pub struct ServerCreateArgs {
    /// The server's name: lower-case letters, digits and '-', at most 63 characters.
    pub name: String,
    /// Where to order it (hetzner).
    #[arg(long)]
    pub provider: String,
    /// The server type, like cx22 (see `server types`).
    #[arg(long = "type")]
    pub server_type: String,
    /// The location, like fsn1 (see `server locations`).
    #[arg(long)]
    pub location: String,
    /// The image, like ubuntu-24.04 (see `server images`).
    #[arg(long)]
    pub image: String,
    /// Create it for this tenant (admins).
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub wait: NoWait,
}

#[derive(Debug, Args)]
pub struct NoWait {
    /// Queue the change as a job and print its id instead of waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct ProviderArg {
    /// The provider to ask.
    #[arg(long, default_value = "hetzner")]
    pub provider: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List entries, newest first: owners see their tenant's (admins: all), others their own.
    #[command(
        visible_alias = "ls",
        after_help = "Examples:\n  {prefix} audit list --since 1h\n  \
        {prefix} audit list --user alice --action site.delete -o json\n  \
        {prefix} audit list --suspicious --since 1d\n  \
        {prefix} audit list --follow --action login -o json\n\n\
        With --follow the newest --limit entries come oldest first, then every new entry as it is\n\
        written, until Ctrl-C (or the connection ends); -o json writes one object a line."
    )]
    List {
        /// Only entries at most this old: 90s, 30m, 12h, 7d, 2w.
        #[arg(long)]
        since: Option<String>,
        /// Only entries caused by this user.
        #[arg(long)]
        user: Option<String>,
        /// Only this action, like site.create or user.delete.
        #[arg(long)]
        action: Option<String>,
        /// Only entries flagged as suspicious (bursts of failures, new networks, lockouts).
        #[arg(long)]
        suspicious: bool,
        /// At most this many entries (1 to 10000); with --follow, before the new ones.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Keep going: show new entries as they are written, until stopped (Ctrl-C).
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Check the hash chain of the whole trail (admins); exit 9 names the first broken entry.
    Verify,
    /// Remove entries older than audit.retention_days now, keeping a checkpoint (admins).
    #[command(
        after_help = "The daemon does this by itself at start and every audit.prune_interval_secs.\n\n\
        Examples:\n  {prefix} audit prune\n  vipanel admin audit prune"
    )]
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List live sessions: owners see their tenant's (admins: all), others their own.
    #[command(
        visible_alias = "ls",
        after_help = "Examples:\n  {prefix} session list\n  {prefix} session list -o json"
    )]
    List,
    /// Disconnect a session by its id (owners: of their tenant; admins: any).
    #[command(after_help = "Example:\n  {prefix} session kill 3f9a0c21 --yes")]
    Kill {
        /// The session's id, as `session list` shows it.
        id: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

#[derive(Debug, Subcommand)]
pub enum UiCommand {
    /// Show your preferences; with -o json the resolved theme (styles) and keymap (bindings)
    /// too, which is what the dashboard draws with.
    #[command(after_help = "Examples:\n  {prefix} ui show\n  {prefix} ui show -o json")]
    Show,
    /// Select a theme, or list, import, remove and export themes.
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        arg_required_else_help = true,
        after_help = "Examples:\n  {prefix} ui theme dark\n  {prefix} ui theme list\n  \
        {prefix} ui theme export dark > mine.toml\n  {prefix} ui theme import mine < mine.toml\n  \
        {prefix} ui theme remove mine --yes\n\n\
        A theme file may name a `parent` and override only some of its styles; see docs/tui.md."
    )]
    Theme(UiFileArgs),
    /// Select a keymap, or list, import, remove and export keymaps.
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        arg_required_else_help = true,
        after_help = "Examples:\n  {prefix} ui keymap vim\n  {prefix} ui keymap list -o json\n  \
        {prefix} ui keymap export vim > mine.toml\n  {prefix} ui keymap import mine < mine.toml\n  \
        {prefix} ui keymap remove mine --yes\n\n\
        A keymap file may name a `parent` and rebind only some actions; a key bound to two\n\
        actions is refused. See docs/tui.md."
    )]
    Keymap(UiFileArgs),
    /// How often the dashboard refreshes, in seconds (1 to 3600; default 5).
    #[command(after_help = "Example:\n  {prefix} ui refresh 10")]
    Refresh {
        /// Seconds between refreshes.
        seconds: String,
    },
    /// How much the dashboard asks for: low (slow links) or normal (default).
    #[command(after_help = "Example:\n  {prefix} ui bandwidth low")]
    Bandwidth {
        /// low or normal.
        level: String,
    },
}

/// `ui theme NAME` / `ui keymap NAME`, or one of their verbs.
#[derive(Debug, Args)]
pub struct UiFileArgs {
    /// The one to select (shipped, or one of yours: see `list`).
    #[arg(required = true)]
    pub name: Option<String>,
    #[command(subcommand)]
    pub command: Option<UiFileCommand>,
}

#[derive(Debug, Subcommand)]
pub enum UiFileCommand {
    /// The shipped ones and yours, with their parent and which one is selected.
    #[command(visible_alias = "ls")]
    List,
    /// Store a file of your own (TOML on standard input), or replace yours of that name.
    /// It is checked whole first: on any error nothing is stored.
    Import {
        /// Its name: lower-case letters, digits and '-', not a shipped one.
        name: String,
    },
    /// Remove one of your own; if it is selected, `default` is selected instead.
    #[command(visible_alias = "rm")]
    Remove {
        name: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Print a file's TOML (a shipped one, or yours): a start for your own.
    Export { name: String },
}

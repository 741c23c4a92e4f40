//! `layer-cake`: create a home, add roles to it, and manage them.
//!
//! Each sub-command lives in its own file under `cmd/`. Every command works on one home
//! (`--home-path`, default `.layer-cake` in the current folder). Errors go to stderr as
//! `layer-cake: <what went wrong>` with exit status 1; usage errors exit with 2.

mod cmd;

use clap::{CommandFactory, Parser, Subcommand};
use layer_cake::home::DEFAULT_HOME;
use std::path::PathBuf;
use std::process::ExitCode;

/// Compose processes into a home of roles, and manage them.
///
/// A home is a folder of roles: each a name, an executable and the arguments it starts with.
/// `run` (foreground) or `start` (background) runs them as one composite process under
/// group-cake, which restarts them by the group's policy and keeps their logs and history.
#[derive(Parser)]
#[command(name = "layer-cake", version, propagate_version = true)]
struct Cli {
    /// The home folder to work on.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_HOME, env = "LC_HOME")]
    home_path: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Create(cmd::create::Create),
    Add(cmd::add::Add),
    Update(cmd::update::Update),
    Delete(cmd::delete::Delete),
    Edit(cmd::edit::Edit),
    List(cmd::list::List),
    Destroy(cmd::destroy::Destroy),
    Run(cmd::run::Run),
    Start(cmd::start::Start),
    Stop(cmd::stop::Stop),
    Restart(cmd::operate::Restart),
    Reload(cmd::operate::Reload),
    Status(cmd::status::Status),
    History(cmd::history::History),
    Returned(cmd::returned::Returned),
    Log(cmd::log::Log),
    Service(cmd::service::Service),
    Network(cmd::network::Network),
    Ping(cmd::ping::Ping),
    Call(cmd::call::CallCmd),
    Secret(cmd::secret::SecretCmd),
    Export(cmd::export::Export),
    Import(cmd::export::Import),
    Completions(cmd::completions::Completions),
    Man(cmd::completions::Man),
}

fn main() -> ExitCode {
    // Output piped into a reader that stops early (`layer-cake log ROLE | head`) ends the
    // command quietly, as it does any Unix tool, not with a panic about a broken pipe.
    // SAFETY: restoring the default action installs no handler code.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Create(c) => c.run(&cli.home_path),
        Command::Add(c) => c.run(&cli.home_path),
        Command::Update(c) => c.run(&cli.home_path),
        Command::Delete(c) => c.run(&cli.home_path),
        Command::Edit(c) => c.run(&cli.home_path),
        Command::List(c) => c.run(&cli.home_path),
        Command::Destroy(c) => c.run(&cli.home_path),
        Command::Run(c) => c.run(&cli.home_path),
        Command::Start(c) => c.run(&cli.home_path),
        Command::Stop(c) => c.run(&cli.home_path),
        Command::Restart(c) => c.run(&cli.home_path),
        Command::Reload(c) => c.run(&cli.home_path),
        Command::Status(c) => c.run(&cli.home_path),
        Command::History(c) => c.run(&cli.home_path),
        Command::Returned(c) => c.run(&cli.home_path),
        Command::Log(c) => c.run(&cli.home_path),
        Command::Service(c) => c.run(&cli.home_path),
        Command::Network(c) => c.run(&cli.home_path),
        Command::Ping(c) => c.run(&cli.home_path),
        Command::Call(c) => c.run(&cli.home_path),
        Command::Secret(c) => c.run(&cli.home_path),
        Command::Export(c) => c.run(&cli.home_path),
        Command::Import(c) => c.run(&cli.home_path),
        Command::Completions(c) => c.run(Cli::command()),
        Command::Man(c) => c.run(Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            let nothing_runs = e.downcast_ref::<cmd::NothingRuns>().is_some();
            let text = format!("{e:#}");
            if !text.is_empty() {
                let _ = writeln!(std::io::stderr(), "layer-cake: {text}");
            }
            if nothing_runs {
                ExitCode::from(cmd::NOTHING_RUNS)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

//! One subcommand per activity of the registry, built at runtime: `git spectra plan "<input>"`,
//! and as well any activity a repository declares in `.spectra/registry/activities/`.
//!
//! Every activity command takes the same arguments ([`ActivityArgs`]); its help comes from the
//! activity's `command` field. An activity whose name is already a command of its own
//! (`discover`, or a name such as `log`) gets no generated command.

use clap::{Args, FromArgMatches};

use super::lifecycle::ActivityArgs;
use crate::registry::{Activity, Registry, RegistryError};
use crate::repo::Repo;
use crate::tip_cache;

/// The registry whose activities become subcommands, and the error when the repository's
/// registry does not load: the built-in one then still gives the usual commands, and the
/// error is reported when the command asked for is not among them.
pub(crate) fn registry() -> (Option<Registry>, Option<RegistryError>) {
    let loaded = Repo::discover().ok().and_then(|repo| {
        let root = repo.work_tree()?.to_path_buf();
        Some(Registry::load_cached(&root, Some(&tip_cache::dir(&repo))))
    });
    match loaded {
        Some(Ok(registry)) => (Some(registry), None),
        Some(Err(error)) => (Registry::builtin().ok(), Some(error)),
        None => (Registry::builtin().ok(), None),
    }
}

/// `command` with one subcommand added per activity of `registry` whose name is free.
pub(crate) fn add_to(mut command: clap::Command, registry: &Registry) -> clap::Command {
    for activity in registry.activities() {
        if !is_taken(&command, &activity.name) {
            command = command.subcommand(activity_command(activity));
        }
    }
    command
}

/// Whether `name` is already a subcommand of `command` (or one of its aliases).
pub(crate) fn is_taken(command: &clap::Command, name: &str) -> bool {
    name == "help"
        || command
            .get_subcommands()
            .any(|sub| sub.get_name() == name || sub.get_all_aliases().any(|alias| alias == name))
}

/// `git spectra <activity>`: the shared arguments and the activity's own help.
fn activity_command(activity: &Activity) -> clap::Command {
    let summary = activity.summary();
    let examples: Vec<String> = activity
        .examples()
        .iter()
        .map(|example| format!("  {example}"))
        .collect();
    let long = format!(
        "{summary}\n\nRuns the {name} activity as one run; its context holds the latest manifests of the\n\
         activities before it for the same service (--service, else the latest discover's).\n\n\
         Examples:\n{}",
        examples.join("\n"),
        name = activity.name,
    );
    ActivityArgs::augment_args(clap::Command::new(activity.name.clone()))
        .about(summary)
        .long_about(long)
}

/// The arguments of an activity command from its matches.
pub(crate) fn args_from(matches: &clap::ArgMatches) -> Result<ActivityArgs, clap::Error> {
    ActivityArgs::from_arg_matches(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_activity_but_discover_is_a_command_with_its_registry_help() {
        let registry = Registry::builtin().unwrap();
        let command = add_to(super::super::Cli::static_command(), &registry);
        let discover_commands = command
            .get_subcommands()
            .filter(|sub| sub.get_name() == "discover")
            .count();
        assert_eq!(discover_commands, 1, "discover keeps its own command");
        let test = command
            .get_subcommands()
            .find(|sub| sub.get_name() == "test")
            .unwrap();
        assert_eq!(
            test.get_about().unwrap().to_string(),
            "Decide the test strategy and run the real tests; their counts are the result."
        );
        let long = test.get_long_about().unwrap().to_string();
        assert!(
            long.ends_with(
                "Examples:\n  git spectra test \"run the test suite\" --service logging\n  git spectra test \"check the collector\" --offline"
            ),
            "{long}"
        );
    }

    #[test]
    fn an_activity_without_command_help_gets_a_plain_one() {
        let mut registry = Registry::builtin().unwrap();
        registry.edit_activity("plan", |plan| plan.command = None);
        let command = add_to(super::super::Cli::static_command(), &registry);
        let plan = command
            .get_subcommands()
            .find(|sub| sub.get_name() == "plan")
            .unwrap();
        assert_eq!(
            plan.get_about().unwrap().to_string(),
            "Run the plan activity."
        );
    }
}

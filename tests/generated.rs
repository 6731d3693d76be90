//! The man pages and shell completions under docs/ are generated from the clap definitions.
//! This test fails when they no longer match the code; regenerate them with
//! `FOLDERSYNC_REGENERATE=1 cargo test --test integration generated`.

use std::fs;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;
use foldersync::cli::Args;
use roff::{bold, italic, roman, Roff};

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cmd = Args::command();
    let mut out = Vec::new();
    out.push((root.join("docs/man/foldersync.1"), man_page(&cmd)));
    for sub in cmd.get_subcommands() {
        let mut page = Vec::new();
        // clap names are &'static str unless its `string` feature is on; a test may leak one.
        let name: &'static str =
            Box::leak(format!("foldersync-{}", sub.get_name()).into_boxed_str());
        clap_mangen::Man::new(sub.clone().name(name))
            .render(&mut page)
            .expect("render a subcommand's man page");
        out.push((root.join(format!("docs/man/{name}.1")), page));
    }
    for (shell, file) in [
        (Shell::Bash, "foldersync.bash"),
        (Shell::Zsh, "_foldersync"),
        (Shell::Fish, "foldersync.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "foldersync", &mut script);
        out.push((root.join("docs/completions").join(file), script));
    }
    out
}

/// foldersync(1): clap_mangen's sections, a synopsis with the options' value names, and the
/// sections of `foldersync::manual` (instead of clap's "EXTRA", which repeats --help's
/// examples).
fn man_page(cmd: &clap::Command) -> Vec<u8> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page).expect("render the man page");
    man.render_name_section(&mut page).unwrap();
    let mut built = cmd.clone();
    built.build();
    synopsis(&built).to_writer(&mut page).unwrap();
    man.render_description_section(&mut page).unwrap();
    man.render_options_section(&mut page).unwrap();
    man.render_subcommands_section(&mut page).unwrap();
    let mut extra = Roff::new();
    for (heading, items) in foldersync::manual::SECTIONS {
        extra.control("SH", [*heading]);
        for (tag, text) in *items {
            if tag.is_empty() {
                extra.control("PP", []);
            } else {
                extra.control("TP", []);
                extra.text([bold(*tag)]);
            }
            extra.text([roman(*text)]);
        }
    }
    extra.to_writer(&mut page).unwrap();
    man.render_version_section(&mut page).unwrap();
    page
}

fn value_name(arg: &clap::Arg) -> String {
    arg.get_value_names()
        .map(|v| v.join(" "))
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
}

/// `foldersync [-i|--interval DURATION] ... SOURCE REPLICA`, and `foldersync status PATH`.
fn synopsis(cmd: &clap::Command) -> Roff {
    let mut line = vec![bold(cmd.get_name()), roman(" ")];
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
    {
        let mut names = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("-{short}"));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("--{long}"));
        }
        line.push(roman("["));
        line.push(bold(names.join("|")));
        if arg.get_num_args().is_some_and(|n| n.takes_values()) {
            let value = arg
                .get_value_names()
                .map(|v| v.join(" "))
                .unwrap_or_default();
            line.push(roman(" "));
            line.push(italic(value));
        }
        line.push(roman("]"));
        if matches!(
            arg.get_action(),
            clap::ArgAction::Count | clap::ArgAction::Append
        ) {
            line.push(roman("..."));
        }
        line.push(roman(" "));
    }
    for arg in cmd.get_positionals() {
        line.push(italic(value_name(arg)));
        line.push(roman(" "));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    for sub in cmd.get_subcommands() {
        roff.control("br", []);
        let mut line = vec![bold(format!("{} {}", cmd.get_name(), sub.get_name()))];
        for arg in sub.get_positionals() {
            line.push(roman(" "));
            line.push(italic(value_name(arg)));
        }
        roff.text(line);
    }
    roff
}

#[test]
fn generated_man_pages_and_completions_are_up_to_date() {
    let regenerate = std::env::var_os("FOLDERSYNC_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (path, content) in generated() {
        if regenerate {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &content).unwrap();
        } else if fs::read(&path).ok().as_deref() != Some(&content[..]) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date with the CLI: {stale:?}; run FOLDERSYNC_REGENERATE=1 cargo test --test integration generated"
    );
}

//! The man pages and shell completions under docs/ are generated from the clap definitions.
//! This test fails when they no longer match the code; regenerate them with
//! `FOLDERSYNC_REGENERATE=1 cargo test --test integration generated`.

use std::fs;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;
use foldersync::cli::Args;

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cmd = Args::command();
    let mut out = Vec::new();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut man)
        .expect("render the man page");
    out.push((root.join("docs/man/foldersync.1"), man));
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
